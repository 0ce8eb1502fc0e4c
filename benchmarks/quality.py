"""Ablation of the linker's quality features on gold mentions, through the pipeline
(so abbreviation definitions are read from each document's own text):

- NCBI-disease development set against CTD MEDIC 2012;
- BC5CDR development set, Disease mentions, against CTD MEDIC 2017.

Rows: dense only, + abbreviations, + sparse fusion, + both; columns acc@1 / acc@5.

    python benchmarks/quality.py --data-dir ../shared/data [--encoder DIR]
        [--bc5cdr-encoder DIR] [--train-aliases] [--sparse-weight 0.5]

``--train-aliases`` adds each set's training-corpus mentions to its KB as aliases
(BioSyn's train dictionary, ``build-kb --train-mentions``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import typer
from wasabi import msg

from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.encoder.pairs import add_mention_aliases
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.training import accuracy_at_k, kb_id_set
from spacy_sapel.training.pubtator_docs import pubtator_to_docs

# name: (dev corpus, types, vocabulary, reader, training corpus for --train-aliases)
SETS = {
    "NCBI-disease dev / MEDIC 2012": (
        "ncbi-disease/NCBIdevelopset_corpus.txt", None, "medic-2012/medic_06Jul2012.txt", "medic",
        "ncbi-disease/NCBItrainset_corpus.txt"),
    "BC5CDR dev Disease / CTD 2017": (
        "bc5cdr/CDR_DevelopmentSet.PubTator.txt", ["Disease"], "ctd-medic-2017/CTD_diseases.tsv.gz", "ctd",
        "bc5cdr/CDR_TrainingSet.PubTator.txt"),
}


def gold_docs(nlp, path: Path, types):
    """Docs whose entities are the gold mentions, and the gold id sets of the
    entities that have ids (NIL mentions stay in the docs but are not scored)."""
    label_map = {t: t for t in types} if types else None
    docs = list(pubtator_to_docs(nlp, path, label_map=label_map))
    gold = [kb_id_set(ent.kb_id_) for doc in docs for ent in doc.ents]
    return docs, gold


def evaluate(linker_kb: LinkerKB, docs, gold, config: Dict) -> Tuple[Dict[int, float], float]:
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config={"top_k": 5, **config})
    nlp.get_pipe("sapel_linker").set_kb(lambda: linker_kb)
    copies = [spacy.tokens.Doc(d.vocab).from_bytes(d.to_bytes()) for d in docs]
    t = time.perf_counter()
    out = list(nlp.pipe(copies, batch_size=64))
    seconds = time.perf_counter() - t
    candidates = [ent._.kb_candidates or [] for doc in out for ent in doc.ents]
    scored = [(c, g) for c, g in zip(candidates, gold) if g]
    acc = accuracy_at_k([c for c, _ in scored], [g for _, g in scored], linker_kb.kb, ks=(1, 5))
    return acc, seconds


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with the corpora and vocabularies"),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder directory or name (e.g. the SAP-trained one)"),
    bc5cdr_encoder: str = typer.Option("", help="Encoder for the BC5CDR rows (default: --encoder)"),
    train_aliases: bool = typer.Option(False, help="Add each set's training mentions to its KB as aliases"),
    sparse_weight: float = typer.Option(0.5, help="Weight of the sparse score in the fusion"),
) -> None:
    encoders = {name: encoder for name in SETS}
    if bc5cdr_encoder:
        encoders["BC5CDR dev Disease / CTD 2017"] = bc5cdr_encoder
    ablation = [
        ("dense only", {"abbreviations": False, "sparse_weight": 0.0}),
        ("+ abbreviations", {"abbreviations": True, "sparse_weight": 0.0}),
        ("+ sparse fusion", {"abbreviations": False, "sparse_weight": sparse_weight}),
        ("+ both", {"abbreviations": True, "sparse_weight": sparse_weight}),
    ]
    rows: List[tuple] = []
    for set_name, (corpus, types, vocab, reader, train) in SETS.items():
        enc = SapEncoder.from_pretrained(encoders[set_name])
        kb = read_kb(data_dir / vocab, reader)
        if train_aliases:
            added = add_mention_aliases(kb, data_dir / train, types=types)
            msg.info(f"{set_name}: {added} training mentions added as aliases")
        t = time.perf_counter()
        linker_kb = LinkerKB.build(kb, enc, sparse=True, show_progress=True)
        msg.info(f"{set_name}: KB of {len(kb)} concepts built in {time.perf_counter() - t:.0f}s")
        docs, gold = gold_docs(spacy.blank("en"), data_dir / corpus, types)
        n_scored = sum(1 for g in gold if g)
        msg.info(f"{n_scored} gold mentions with ids")
        for name, config in ablation:
            acc, seconds = evaluate(linker_kb, docs, gold, config)
            rows.append((set_name, name, f"{acc[1]:.3f}", f"{acc[5]:.3f}", f"{n_scored / seconds:.0f}"))
    msg.table(rows, header=("set", "linker", "acc@1", "acc@5", "mentions/s"), divider=True)
    msg.info(f"encoders {encoders}; sparse weight {sparse_weight}; training mentions as aliases: {train_aliases}")


if __name__ == "__main__":
    typer.run(main)
