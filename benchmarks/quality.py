"""Ablation of the linker's ranking features on gold mentions, through the pipeline
(so abbreviation definitions are read from each document's own text):

- NCBI-disease development set against CTD MEDIC 2012 + NCBI training mentions;
- BC5CDR development set, Disease mentions, against CTD MEDIC 2017 + BC5CDR training
  mentions.

Each KB holds its training corpus's mentions as aliases and as priors (``build-kb
--train-mentions``); development mentions are never used. Rows: today's linker (no
priors, short forms merged with their long form), + priors, + document consistency
(long form first, implicit short forms), + spelling variants, + one sense per document,
+ the learned reranker (trained on the training corpus, k-fold over its documents;
without and with its ``similar_mentions`` feature),
the hybrid dense + sparse (character n-gram) score with and without the reranker.
Columns: acc@1, acc@5, mentions/second through ``nlp.pipe`` and the error breakdown of
:func:`error_breakdown`.

    python benchmarks/quality.py --data-dir ../shared/data [--encoder DIR]
        [--cache-dir DIR] [--no-reranker] [--sparse-weight 0.2]

``--cache-dir`` keeps each built KB (names encoded once per encoder, keyed by its weights)
and each trained reranker between runs. A reranker is keyed by the linker settings and its
features, not by the code:
delete the cache's ``reranker-*`` folders after changing how the linker retrieves.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import spacy
import typer
from wasabi import msg

from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.kb.ids import kb_id_set
from spacy_sapel.kb.priors import Priors
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.linker import DEFAULT_CONFIG as LINKER_DEFAULTS
from spacy_sapel.pipeline.rerankers import FEATURES, LinearReranker
from spacy_sapel.training import accuracy_at_k
from spacy_sapel.training.evaluate import error_breakdown
from spacy_sapel.training.mentions import add_mention_aliases, add_mention_priors
from spacy_sapel.training.pubtator_docs import pubtator_to_docs
from spacy_sapel.training.reranker_training import train_reranker

# name: (dev corpus, types, vocabulary, reader, training corpus)
SETS = {
    "NCBI dev": (
        "ncbi-disease/NCBIdevelopset_corpus.txt", None, "medic-2012/medic_06Jul2012.txt", "medic",
        "ncbi-disease/NCBItrainset_corpus.txt"),
    "BC5CDR dev Disease": (
        "bc5cdr/CDR_DevelopmentSet.PubTator.txt", ["Disease"], "ctd-medic-2017/CTD_diseases.tsv.gz", "ctd",
        "bc5cdr/CDR_TrainingSet.PubTator.txt"),
}

# the ablation's first settings, and the linker's defaults (its "+ spelling variants" row),
# read from the factory so that the row follows them
BASE_LINKER = {"abbreviations": True, "sparse_weight": 0.0, "implicit_short_forms": False, "spelling_variants": False}
DEFAULT_LINKER = {key: LINKER_DEFAULTS[key] for key in (*BASE_LINKER, "priors", "short_forms")}


def check_sets(only: List[str]) -> None:
    """Refuse an unknown ``--only`` set before any KB is built (minutes)."""
    unknown = [name for name in only if name not in SETS]
    if unknown:
        raise typer.BadParameter(f"unknown set(s) {unknown}; the sets are {list(SETS)}", param_hint="--only")


def gold_docs(nlp, path: Path, types):
    """Docs whose entities are the gold mentions, and the gold id sets of the
    entities that have ids (NIL mentions stay in the docs but are not scored)."""
    label_map = {t: t for t in types} if types else None
    docs = list(pubtator_to_docs(nlp, path, label_map=label_map))
    gold = [kb_id_set(ent.kb_id_) for doc in docs for ent in doc.ents]
    return docs, gold


def run_linker(linker_kb: LinkerKB, docs, config: Dict, reranker=None, top_k: int = 5) -> Tuple[List, float]:
    """Copies of ``docs`` linked by a ``sapel_linker`` with ``config`` (and ``reranker``)
    against ``linker_kb``, and the seconds ``nlp.pipe`` took."""
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("sapel_linker", config={**config, "top_k": top_k})
    linker.reranker = reranker
    linker.set_kb(lambda: linker_kb)
    copies = [spacy.tokens.Doc(d.vocab).from_bytes(d.to_bytes()) for d in docs]
    t = time.perf_counter()
    out = list(nlp.pipe(copies, batch_size=64))
    return out, time.perf_counter() - t


def evaluate(linker_kb: LinkerKB, docs, gold, config: Dict, reranker=None) -> Tuple[Dict, float, Dict]:
    out, seconds = run_linker(linker_kb, docs, config, reranker)
    candidates, short = [], []
    for doc in out:
        short_forms = {s.text for s, _ in (doc._.sapel_abbreviations or [])}
        for ent in doc.ents:
            candidates.append(ent._.kb_candidates or [])
            short.append(ent.text in short_forms)
    scored = [i for i, g in enumerate(gold) if g]
    cands = [candidates[i] for i in scored]
    golds = [gold[i] for i in scored]
    acc = accuracy_at_k(cands, golds, linker_kb.kb, ks=(1, 5))
    errors = error_breakdown(cands, golds, linker_kb.kb, short_forms=[short[i] for i in scored])
    return acc, seconds, errors


def cached_kb(data_dir: Path, set_name: str, encoder: str, cache: Optional[Path]) -> LinkerKB:
    corpus, types, vocab, reader, train = SETS[set_name]
    model = SapEncoder.from_pretrained(encoder, device="cpu")
    # keyed by the weights, not the path: an encoder trained again into the same folder
    # must not be scored with the vectors (and the encoder copy) of the earlier one
    key = hashlib.sha256(f"{set_name}|{model.fingerprint}|v4".encode()).hexdigest()[:12]
    path = cache / f"kb-{key}" if cache else None
    if path is not None and path.exists():
        # the cache saves the encoding; the priors are counted afresh (cheap)
        linker_kb = LinkerKB.from_disk(path, device="cpu")
        added_names = linker_kb.kb.priors.added_names
        linker_kb.kb.priors = Priors()
        linker_kb.kb.priors.added_names = added_names
        counted, skipped = add_mention_priors(linker_kb.kb, data_dir / train, types=types)
        msg.info(f"{set_name}: cached KB; {counted} (mention, concept) pairs counted as priors; not counted: {skipped}")
        return linker_kb
    kb = read_kb(data_dir / vocab, reader)
    added = add_mention_aliases(kb, data_dir / train, types=types)
    counted, skipped = add_mention_priors(kb, data_dir / train, types=types)
    msg.info(f"{set_name}: {added} training aliases; {counted} mentions counted as priors; not counted: {skipped}")
    t = time.perf_counter()
    linker_kb = LinkerKB.build(kb, model, sparse=True, show_progress=True)
    msg.info(f"{set_name}: KB of {len(kb)} concepts built in {time.perf_counter() - t:.0f}s")
    if path is not None:
        linker_kb.to_disk(path)
    return linker_kb


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with the corpora and vocabularies"),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder directory or name"),
    cache_dir: Optional[Path] = typer.Option(None, help="Keep built KBs and trained rerankers here between runs"),
    reranker: bool = typer.Option(True, help="Train (k-fold on the training corpus) and measure the reranker"),
    folds: int = typer.Option(5, min=2, help="Folds over training documents for the reranker's examples"),
    sparse_weight: float = typer.Option(0.2, help="Weight of the sparse (character n-gram) score in the hybrid rows"),
    only: List[str] = typer.Option([], help="Only these sets (by name)"),
) -> None:
    # checked before any KB is built or reranker trained (minutes), not at the first search
    if not 0.0 < sparse_weight <= 1.0:
        raise typer.BadParameter(f"must be in (0, 1], got {sparse_weight}", param_hint="--sparse-weight")
    check_sets(only)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    base = BASE_LINKER
    ranked = {**base, "priors": True, "short_forms": "long_form_first"}
    implicit = {**ranked, "implicit_short_forms": True}
    spelling = DEFAULT_LINKER
    hybrid = {**spelling, "sparse_weight": sparse_weight}
    ablation = [
        ("today's linker", {**base, "priors": False, "short_forms": "merge"}),
        ("+ priors", {**base, "priors": True, "short_forms": "merge"}),
        ("+ long form first", ranked),
        ("+ implicit short forms", implicit),
        ("+ spelling variants", spelling),
        ("+ one sense per doc", {**spelling, "one_sense_per_doc": True}),
        (f"+ sparse {sparse_weight:g}", hybrid),
    ]
    rows: List[tuple] = []
    for set_name, (corpus, types, _, _, train) in SETS.items():
        if only and set_name not in only:
            continue
        linker_kb = cached_kb(data_dir, set_name, encoder, cache_dir)
        docs, gold = gold_docs(spacy.blank("en"), data_dir / corpus, types)
        n_scored = sum(1 for g in gold if g)
        msg.info(f"{set_name}: {n_scored} gold mentions with ids")
        runs = [(name, config, None) for name, config in ablation]
        if reranker:
            without = [f for f in FEATURES if f != "similar_mentions"]
            for name, config, features in (
                ("+ reranker without similar mentions", spelling, without),
                ("+ reranker", spelling, list(FEATURES)),
                (f"+ sparse {sparse_weight:g} + reranker", hybrid, list(FEATURES)),
            ):
                model = trained_reranker(data_dir, set_name, linker_kb, config, folds, cache_dir, features)
                runs.append((name, config, model))
        for name, config, model in runs:
            acc, seconds, errors = evaluate(linker_kb, docs, gold, config, reranker=model)
            rows.append((
                set_name, name, f"{acc[1]:.3f}", f"{acc[5]:.3f}", f"{n_scored / seconds:.0f}",
                errors["errors"], errors["tie"], errors["short_form"], errors["in_top_k"], errors["not_in_top_k"],
            ))
    header = ("set", "linker", "acc@1", "acc@5", "mentions/s", "errors", "ties", "short forms", "in top 5", "not in top 5")
    msg.table(rows, header=header, divider=True)
    msg.info(f"encoder {encoder}; KBs: vocabulary + training mentions as aliases and priors")


def trained_reranker(
    data_dir: Path, set_name: str, linker_kb: LinkerKB, config: Dict, folds: int, cache: Optional[Path],
    features: Optional[List[str]] = None,
) -> LinearReranker:
    _, types, _, _, train = SETS[set_name]
    features = list(FEATURES if features is None else features)
    key = hashlib.sha256(
        f"{set_name}|{sorted(config.items())}|{folds}|{linker_kb.encoder.fingerprint}|{features}".encode()
    ).hexdigest()[:12]
    path = cache / f"reranker-{key}" if cache else None
    model = LinearReranker(features=features)
    if path is not None and path.exists():
        model.from_disk(path)
        return model
    t = time.perf_counter()
    docs, _ = gold_docs(spacy.blank("en"), data_dir / train, types)
    report = train_reranker(model, linker_kb, docs, linker_config=config, folds=folds)
    msg.info(f"{set_name}: reranker trained in {time.perf_counter() - t:.0f}s: {report}")
    if path is not None:
        model.to_disk(path)
    return model


if __name__ == "__main__":
    typer.run(main)
