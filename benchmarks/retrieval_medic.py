"""Retrieval-aware fine-tuning against today's fine-tuning, on NCBI-disease, within a
stated time budget.

Prints NCBI-disease development acc@1/acc@5 (gold mentions against MEDIC 2012, and
against MEDIC 2012 with the NCBI training mentions added as aliases) for

- the base encoder (default all-MiniLM-L6-v2),
- + retrieval fine-tuning (``objective="retrieval"``: each NCBI training mention
  against the names the encoder retrieves from the whole aliased KB, BioSyn's
  marginal likelihood), and
- + fine-tuning on corpus pairs as ``configs/sap_finetune.cfg`` does (project.yml's
  recipe: pairs of a mention and up to 8 names of its concept, hard batches, lr 5e-5).

Whole-KB encodings dominate on a CPU, so the two training runs get the same time
budget, computed after the base evaluation from ``--budget-minutes`` (what is left
after three evaluations, halved, at most ``--max-train-minutes``). The base encoder's
vectors of the KB names serve as the retrieval run's first candidates. When three
whole-KB evaluations do not fit the budget (``--shortlist auto``), the trained encoders
are scored only on the names of the concepts among the base encoder's top
``--shortlist-names`` names for some development mention (other names score 0): a
re-ranking of the base encoder's shortlist, said so in the table. Rows print as
they finish and ``OUTPUT/results.json`` is rewritten after each, so a run cut short
keeps what it measured. By hand, not CI; run heavy jobs one at a time:

    flock /tmp/sapel-heavy.lock python benchmarks/retrieval_medic.py \\
        --data-dir ../shared/data --budget-minutes 45 --output-dir benchmarks/output/retrieval_medic
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import typer
from wasabi import msg

from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.kb import KnowledgeBase
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.sap.recipe import create_sap_pretrainer
from spacy_sapel.sap.retrieval import RetrievalConfig, RetrievalTrainer
from spacy_sapel.training.linking_eval import Query, evaluate_encoder, read_queries
from spacy_sapel.training.mentions import add_mention_aliases, labelled_mentions


def evaluate(
    encoder: SapEncoder,
    kbs: Dict[str, KnowledgeBase],
    queries: Sequence[Query],
    shortlist: Optional[Set[str]] = None,
) -> Tuple[Dict[str, Dict[int, float]], Dict[str, np.ndarray]]:
    """acc@1/5 against each KB, and each KB's name vectors (alias-table order); names
    shared between the KBs are encoded once. With ``shortlist``, only those names are
    encoded; the others get zero vectors (score 0)."""
    names = list(dict.fromkeys(n for kb in kbs.values() for n in kb.alias_table()[0]))
    if shortlist is None:
        vectors = encoder.encode(names, show_progress=True)
    else:
        rows = [i for i, n in enumerate(names) if n in shortlist]
        vectors = np.zeros((len(names), encoder.dim), dtype=np.float32)
        vectors[rows] = encoder.encode([names[i] for i in rows], show_progress=True)
    row_of = {name: i for i, name in enumerate(names)}

    def embed(kb_names: Sequence[str]) -> np.ndarray:
        return vectors[[row_of[n] for n in kb_names]]

    accs = {label: evaluate_encoder(kb, encoder, queries, embed=embed)[0] for label, kb in kbs.items()}
    return accs, {label: embed(kb.alias_table()[0]) for label, kb in kbs.items()}


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with medic-2012/ and ncbi-disease/"),
    output_dir: Path = typer.Option(Path("benchmarks/output/retrieval_medic"), help="Where the trained encoders and results.json go"),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Base encoder"),
    budget_minutes: float = typer.Option(45.0, help="Wall-clock budget of the whole run"),
    max_train_minutes: float = typer.Option(15.0, help="Cap on each training run's time budget"),
    candidates: int = typer.Option(20, help="Retrieval: names retrieved per mention"),
    batch_size: int = typer.Option(16, help="Retrieval: mentions per batch"),
    retrieval_lr: float = typer.Option(5e-5, help="Retrieval: learning rate"),
    scale: float = typer.Option(20.0, help="Retrieval: inverse temperature of the softmax over cosine scores"),
    refresh_every: int = typer.Option(0, help="Retrieval: retrieve afresh every N steps (0: every epoch)"),
    refresh_names: int = typer.Option(2000, help="Retrieval: sampled refresh size beyond the retrieved concepts' names (0: whole KB)"),
    epochs: int = typer.Option(1, help="Epochs of both training runs"),
    ft_lr: float = typer.Option(5e-5, help="Today's fine-tuning: learning rate"),
    ft_names_per_mention: int = typer.Option(8, help="Today's fine-tuning: names of the gold concept paired with each mention"),
    shortlist: str = typer.Option("auto", help="Score trained encoders on the base encoder's shortlist only: auto (when whole-KB evaluations do not fit the budget), on, off"),
    shortlist_names: int = typer.Option(300, help="Shortlist: the concepts of each mention's top-N names by the base encoder"),
) -> None:
    started = time.perf_counter()
    medic = data_dir / "medic-2012" / "medic_06Jul2012.txt"
    ncbi_train = data_dir / "ncbi-disease" / "NCBItrainset_corpus.txt"
    ncbi_dev = data_dir / "ncbi-disease" / "NCBIdevelopset_corpus.txt"
    output_dir.mkdir(parents=True, exist_ok=True)
    plain = read_kb(medic, "medic")
    aliased = read_kb(medic, "medic")
    n_aliases = add_mention_aliases(aliased, ncbi_train)
    kbs = {"MEDIC": plain, "MEDIC + NCBI train mentions": aliased}
    queries = read_queries(ncbi_dev)
    header = ("encoder", *(f"{kb} acc@{k}" for kb in kbs for k in (1, 5)))
    rows: List[Tuple[str, ...]] = []
    trainings: List[Dict] = []

    short: Optional[Set[str]] = None

    def record(label: str, enc: SapEncoder) -> Tuple[float, Dict[str, np.ndarray]]:
        start = time.perf_counter()
        accs, vectors = evaluate(enc, kbs, queries, short)
        if short is not None:
            label += f" [shortlist of {len(short)} names]"
        seconds = time.perf_counter() - start
        rows.append((label, *(f"{a[k]:.3f}" for a in accs.values() for k in (1, 5))))
        msg.text(f"{label}: evaluated in {seconds:.0f}s: {rows[-1][1:]}")
        results = {"header": header, "rows": rows, "training": trainings,
                   "minutes": (time.perf_counter() - started) / 60}
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
        return seconds, vectors

    base = SapEncoder.from_pretrained(encoder, device="cpu", max_length=25)
    eval_seconds, base_vectors = record("base", base)
    left = budget_minutes * 60 - (time.perf_counter() - started)
    names, name_rows = aliased.alias_table()
    if shortlist == "on" or (shortlist == "auto" and left < 2 * 1.15 * eval_seconds + 2 * 300):
        kb_vectors = base_vectors["MEDIC + NCBI train mentions"]
        mention_vectors = base.encode([text for text, _ in queries])
        k = min(shortlist_names, len(names) - 1)
        top = np.argpartition(-(mention_vectors @ kb_vectors.T), k, axis=1)[:, :k]
        concepts = np.unique(np.asarray(name_rows)[top])
        short = {names[i] for i in np.flatnonzero(np.isin(name_rows, concepts))}
        eval_seconds *= len(short) / len(names)
        # the base encoder's top-5 concepts lie in its own shortlist: its row is the same
        msg.info(f"Trained encoders are scored on a shortlist: {len(short)} of {len(names)} names "
                 f"({len(concepts)} concepts among the base top-{k} names of some mention; the "
                 f"base row is the same on it)")
    left -= 2 * 1.15 * eval_seconds
    train_seconds = max(60.0, min(max_train_minutes * 60, left / 2))
    msg.info(
        f"Base evaluation took {eval_seconds / 60:.1f} min; each training run gets "
        f"{train_seconds / 60:.1f} min (budget {budget_minutes:.0f} min)"
    )

    mentions, _ = labelled_mentions(ncbi_train, aliased)
    config = RetrievalConfig(
        batch_size=batch_size, lr=retrieval_lr, warmup_ratio=0.1, epochs=epochs,
        n_candidates=candidates, refresh_every=refresh_every, refresh_names=refresh_names,
        scale=scale, max_seconds=train_seconds, checkpoint_every=50,
    )
    trainer = RetrievalTrainer(
        base, aliased, mentions, output_dir / "retrieval", config=config,
        name_vectors=base_vectors["MEDIC + NCBI train mentions"], source=str(ncbi_train),
    )
    result = trainer.train()
    trainings.append({
        "run": "retrieval fine-tune", "minutes": round(result.seconds / 60, 1),
        "steps": f"{result.steps}/{result.total_steps}", "mentions": len(trainer.queries),
        "refreshes": result.refreshes,
    })
    record("+ retrieval fine-tune", SapEncoder.from_disk(result.model_dir, device="cpu"))

    run = create_sap_pretrainer(
        base_encoder=encoder, max_length=25, kb_paths=[str(medic)], reader="medic",
        corpus=str(ncbi_train), corpus_aliases=True, max_pairs_per_concept=ft_names_per_mention,
        training={"batch_size": 64, "lr": ft_lr, "warmup_ratio": 0.1, "epochs": epochs,
                  "checkpoint_every": 200, "batching": "hard", "max_seconds": train_seconds},
    )
    result = run(output_dir / "ft", device="cpu")
    trainings.append({
        "run": "fine-tune (corpus pairs)", "minutes": round(result.seconds / 60, 1),
        "steps": f"{result.steps}/{result.total_steps}",
    })
    record("+ fine-tune (corpus pairs)", SapEncoder.from_disk(result.model_dir, device="cpu"))

    msg.divider(f"NCBI-disease development ({len(queries)} mentions); {n_aliases} train mentions added as aliases")
    msg.table(rows, header=header, divider=True)
    msg.table(
        [(t["run"], t["minutes"], t["steps"]) for t in trainings],
        header=("training", "minutes", "steps done/planned"), divider=True,
    )
    for r in trainings[0]["refreshes"]:
        msg.text(f"refresh at step {r['step']}: {r['names']} names encoded in {r['seconds']:.0f}s, "
                 f"gold among the candidates for {r['gold_retrieved']:.1%} of the mentions")
    msg.info(f"Wall clock: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    typer.run(main)
