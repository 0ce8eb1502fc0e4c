"""Self-alignment pretraining on CTD MEDIC, then fine-tuning on labelled mentions.

Trains the default all-MiniLM-L6-v2 (mean pooling) with SapBERT's recipe on MEDIC
synonym pairs within a time budget, fine-tunes that encoder on NCBI-disease training
mentions (pairs: gold mention, each name of its gold concept), and prints acc@1/acc@5
of the base encoder, + SAP and + SAP + fine-tune side by side on

- NCBI-disease development gold mentions against MEDIC 2012, and
- BC5CDR development Disease gold mentions against CTD MEDIC 2017,

each with the plain KB and with the corpus's training mentions added as aliases
(BioSyn's "train dictionary"). Raw mention text; a mention is correct at k when any id
of a top-k distinct concept is in its gold id set (composites split on | and +).
By hand, not CI; run heavy jobs one at a time:

    flock /tmp/sapel-heavy.lock python benchmarks/sap_medic.py --data-dir ../shared/data \\
        --sap-minutes 30 --output-dir benchmarks/output/sap_medic

The trained encoders are written to OUTPUT/sap/model-last and OUTPUT/ft_ncbi/model-last
(and OUTPUT/ft_bc5cdr/model-last with --bc5cdr-finetune); each run's recipe and settings
are in its training.json, and `spacy project run sap-medic` reruns this script.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import typer
from wasabi import msg

from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.kb import KnowledgeBase
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.sap.recipe import create_sap_pretrainer
from spacy_sapel.training.linking_eval import Query, evaluate_encoder, read_queries
from spacy_sapel.training.mentions import add_mention_aliases


def evaluate(
    encoder: SapEncoder,
    kbs: Dict[str, KnowledgeBase],
    queries: Sequence[Query],
) -> Dict[str, Dict[int, float]]:
    """acc@1/5 against each KB; names shared between the KBs are encoded once."""
    names = list(dict.fromkeys(n for kb in kbs.values() for n in kb.alias_table()[0]))
    vectors = encoder.encode(names, show_progress=True)
    row_of = {name: i for i, name in enumerate(names)}

    def embed(kb_names: Sequence[str]) -> np.ndarray:
        return vectors[[row_of[n] for n in kb_names]]

    return {label: evaluate_encoder(kb, encoder, queries, embed=embed)[0] for label, kb in kbs.items()}


def with_aliases(kb_path: Path, reader: str, corpus: Path, types: Optional[List[str]]) -> Tuple[KnowledgeBase, int]:
    kb = read_kb(kb_path, reader)
    return kb, add_mention_aliases(kb, corpus, types=types)


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with medic-2012/, ncbi-disease/, ctd-medic-2017/, bc5cdr/"),
    output_dir: Path = typer.Option(Path("benchmarks/output/sap_medic"), help="Where the trained encoders go"),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Base encoder"),
    sap_minutes: float = typer.Option(30.0, help="Time budget of SAP on MEDIC pairs (0: skip SAP, fine-tune the base)"),
    sap_batch_size: int = typer.Option(64, help="Pairs per SAP batch"),
    sap_lr: float = typer.Option(2e-5, help="SAP learning rate"),
    sap_pairs_per_concept: int = typer.Option(50, help="SAP pair cap per concept"),
    batching: str = typer.Option("hard", help="Batch order of both runs: random (SapBERT) or hard (neighbouring concepts share a batch)"),
    ft_epochs: int = typer.Option(1, help="Fine-tuning epochs over the NCBI-disease training pairs"),
    ft_lr: float = typer.Option(5e-5, help="Fine-tuning learning rate"),
    ft_names_per_mention: int = typer.Option(8, help="Names of the gold concept paired with each training mention"),
    bc5cdr_finetune: bool = typer.Option(False, help="Also fine-tune on BC5CDR training Disease mentions for the BC5CDR rows"),
    ablate_batching: bool = typer.Option(False, help="Also fine-tune with the other batch order (an extra NCBI row)"),
    resume: bool = typer.Option(False, help="Resume the training runs from their checkpoints"),
) -> None:
    medic = data_dir / "medic-2012" / "medic_06Jul2012.txt"
    ctd = data_dir / "ctd-medic-2017" / "CTD_diseases.tsv.gz"
    ncbi_train = data_dir / "ncbi-disease" / "NCBItrainset_corpus.txt"
    ncbi_dev = data_dir / "ncbi-disease" / "NCBIdevelopset_corpus.txt"
    cdr_train = data_dir / "bc5cdr" / "CDR_TrainingSet.PubTator.txt"
    cdr_dev = data_dir / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt"
    disease = ["Disease"]
    common = dict(base_encoder=encoder, max_length=25)
    trainings: List[Tuple[str, float, float, Dict]] = []

    encoders: Dict[str, str] = {"base": encoder}
    ft_base = encoder
    if sap_minutes > 0:
        sap_training = {
            "batch_size": sap_batch_size, "lr": sap_lr, "warmup_ratio": 0.05,
            "max_seconds": sap_minutes * 60, "checkpoint_every": 200,
            "max_steps": 0, "epochs": 1, "batching": batching,
        }
        run = create_sap_pretrainer(
            **common, kb_paths=[str(medic)], reader="medic",
            max_pairs_per_concept=sap_pairs_per_concept, validation_fraction=0.02,
            training=sap_training,
        )
        result = run(output_dir / "sap", resume=resume, device="cpu")
        trainings.append(("SAP on MEDIC pairs", result.seconds, result.pairs_per_second, result.validation))
        encoders["+ SAP"] = str(result.model_dir)
        ft_base = str(result.model_dir)
    ft_training = {"batch_size": 64, "lr": ft_lr, "warmup_ratio": 0.1, "epochs": ft_epochs,
                   "checkpoint_every": 200, "batching": batching}
    run = create_sap_pretrainer(
        **{**common, "base_encoder": ft_base}, kb_paths=[str(medic)], reader="medic",
        corpus=str(ncbi_train), corpus_aliases=True,
        max_pairs_per_concept=ft_names_per_mention, training=ft_training,
    )
    result = run(output_dir / "ft_ncbi", resume=resume, device="cpu")
    trainings.append(("fine-tune on NCBI train", result.seconds, result.pairs_per_second, {}))
    ft_label = "+ SAP + fine-tune" if sap_minutes > 0 else "+ fine-tune"
    encoders[ft_label] = str(result.model_dir)
    ablation: Dict[str, str] = {}  # NCBI rows only
    if ablate_batching:
        other = "random" if batching == "hard" else "hard"
        run = create_sap_pretrainer(
            **{**common, "base_encoder": ft_base}, kb_paths=[str(medic)], reader="medic",
            corpus=str(ncbi_train), corpus_aliases=True,
            max_pairs_per_concept=ft_names_per_mention,
            training={**ft_training, "batching": other},
        )
        result = run(output_dir / f"ft_ncbi_{other}", resume=resume, device="cpu")
        trainings.append((f"fine-tune on NCBI train ({other} batches)", result.seconds, result.pairs_per_second, {}))
        ablation[f"{ft_label} ({other} batches)"] = str(result.model_dir)
    cdr_encoders = dict(encoders)
    if bc5cdr_finetune:
        run = create_sap_pretrainer(
            **{**common, "base_encoder": ft_base}, kb_paths=[str(ctd)], reader="ctd",
            corpus=str(cdr_train), corpus_types=disease, corpus_aliases=True,
            max_pairs_per_concept=ft_names_per_mention, training=ft_training,
        )
        result = run(output_dir / "ft_bc5cdr", resume=resume, device="cpu")
        trainings.append(("fine-tune on BC5CDR train", result.seconds, result.pairs_per_second, {}))
        cdr_encoders[ft_label] = str(result.model_dir)
    else:
        cdr_encoders[ft_label + " (NCBI)"] = cdr_encoders.pop(ft_label)

    ncbi_kbs = {"MEDIC": read_kb(medic, "medic")}
    ncbi_kbs["MEDIC + NCBI train mentions"], n_ncbi = with_aliases(medic, "medic", ncbi_train, None)
    cdr_kbs = {"CTD 2017": read_kb(ctd, "ctd")}
    cdr_kbs["CTD 2017 + BC5CDR train mentions"], n_cdr = with_aliases(ctd, "ctd", cdr_train, disease)
    ncbi_q = read_queries(ncbi_dev)
    cdr_q = read_queries(cdr_dev, types=disease)

    tables = {}
    for title, encs, kbs, queries in [
        (f"NCBI-disease development ({len(ncbi_q)} mentions); {n_ncbi} train mentions added as aliases", {**encoders, **ablation}, ncbi_kbs, ncbi_q),
        (f"BC5CDR development Disease ({len(cdr_q)} mentions); {n_cdr} train mentions added as aliases", cdr_encoders, cdr_kbs, cdr_q),
    ]:
        rows = []
        for label, path in encs.items():
            enc = SapEncoder.from_pretrained(path, device="cpu")
            start = time.perf_counter()
            accs = evaluate(enc, kbs, queries)
            msg.text(f"{label}: evaluated in {time.perf_counter() - start:.0f}s")
            rows.append((label, *(f"{a[k]:.3f}" for a in accs.values() for k in (1, 5))))
        header = ("encoder", *(f"{kb} acc@{k}" for kb in kbs for k in (1, 5)))
        msg.divider(title)
        msg.table(rows, header=header, divider=True)
        tables[title] = {"header": header, "rows": rows}
    msg.divider("training")
    msg.table(
        [(name, f"{s / 60:.1f}", f"{pps:.1f}", json.dumps(val)) for name, s, pps, val in trainings],
        header=("run", "minutes", "pairs/s", "validation synonym acc@1"),
        divider=True,
    )
    (output_dir / "results.json").write_text(json.dumps({"tables": tables, "training": trainings}, indent=2))


if __name__ == "__main__":
    typer.run(main)
