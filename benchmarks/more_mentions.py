"""What labelled development documents add to the linker when they join its KB (as
aliases and priors) and its reranker's training, measured on development documents
they do not include.

Each development set is split into two halves (even and odd documents). Each half is
scored twice:

- against the KB of ``quality.py`` (vocabulary + training mentions), with the default
  linker and with the reranker trained on the training corpus (k-fold over its docs);
- against a KB that also holds the *other* half's mentions, with the default linker, with
  the same reranker (re-targeted to that KB) and with a reranker trained k-fold over the
  training documents and the other half's.

This is what the ``finalize`` step of ``project.yml`` does for the packaged pipeline
(training + development mentions), with held-out documents left to score it.

    python benchmarks/more_mentions.py --data-dir ../shared/data [--cache-dir DIR] [--pooled]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
import typer
from wasabi import msg

sys.path.insert(0, str(Path(__file__).parent))
from quality import DEFAULT_LINKER, SETS, cached_kb, check_sets, evaluate, gold_docs, trained_reranker  # noqa: E402

from spacy_sapel.encoder import DEFAULT_ENCODER  # noqa: E402
from spacy_sapel.kb.augment import add_aliases_from_mentions  # noqa: E402
from spacy_sapel.kb.ids import concept_index, kb_id_set  # noqa: E402
from spacy_sapel.kb.knowledge_base import clean_name  # noqa: E402
from spacy_sapel.kb.readers import read_kb  # noqa: E402
from spacy_sapel.pipeline import LinkerKB  # noqa: E402
from spacy_sapel.pipeline.rerankers import LinearReranker  # noqa: E402
from spacy_sapel.training.mentions import add_mention_aliases, add_mention_priors, labelled_mentions  # noqa: E402
from spacy_sapel.training.reranker_training import train_reranker  # noqa: E402


def doc_mentions(kb, docs) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
    """(text, concept) pairs of the docs' gold entities, as ``build-kb`` takes them
    from a corpus: single-id mentions as aliases, every id as a prior."""
    index = concept_index(kb)
    aliases, priors = [], []
    for doc in docs:
        for ent in doc.ents:
            known = list(dict.fromkeys(index[i] for i in sorted(kb_id_set(ent.kb_id_)) if i in index))
            text = clean_name(ent.text)
            if not known or not text:
                continue
            priors.extend((text, cid) for cid in known)
            if len(known) == 1:
                aliases.append((text, known[0]))
    return aliases, priors


def kb_with(data_dir: Path, set_name: str, linker_kb: LinkerKB, docs: Sequence, *, pooled: bool = False) -> LinkerKB:
    """The vocabulary + the training corpus's mentions + ``docs``' mentions, as
    ``build-kb --train-mentions`` takes two corpora (each one's unambiguous strings
    become aliases; ``--pooled``: a string that the two link to different concepts is
    nobody's alias), encoded afresh."""
    _, types, vocab, reader, train = SETS[set_name]
    kb = read_kb(data_dir / vocab, reader)
    aliases, priors = doc_mentions(kb, docs)
    if pooled:
        train_pairs, _ = labelled_mentions(data_dir / train, kb, types=types)
        add_aliases_from_mentions(kb, train_pairs + aliases, source="training + other half")
    else:
        # the training corpus as build-kb reads it, then the half as a second corpus
        add_mention_aliases(kb, data_dir / train, types=types)
        add_aliases_from_mentions(kb, aliases, source="other half")
    add_mention_priors(kb, data_dir / train, types=types)
    kb.add_priors(priors, source="other half")
    return LinkerKB.build(kb, linker_kb.encoder, sparse=True)


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with the corpora and vocabularies"),
    cache_dir: Optional[Path] = typer.Option(None, help="quality.py's cache: built KBs and trained rerankers"),
    folds: int = typer.Option(5, min=2, help="Folds over documents for the rerankers' examples"),
    only: List[str] = typer.Option([], help="Only these sets (by name)"),
    pooled: bool = typer.Option(False, help="Pool the two corpora's mentions for the alias rule (a string they link to different concepts is nobody's alias) instead of taking each one's unambiguous strings, as build-kb does"),
) -> None:
    check_sets(only)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    config = DEFAULT_LINKER
    rows: List[tuple] = []
    for set_name, (corpus, types, _, _, train) in SETS.items():
        if only and set_name not in only:
            continue
        linker_kb = cached_kb(data_dir, set_name, DEFAULT_ENCODER, cache_dir)
        nlp = spacy.blank("en")
        dev, _ = gold_docs(nlp, data_dir / corpus, types)
        train_docs, _ = gold_docs(nlp, data_dir / train, types)
        trained = trained_reranker(data_dir, set_name, linker_kb, config, folds, cache_dir)
        totals: Dict[str, List[float]] = {}
        halves = {"even": dev[0::2], "odd": dev[1::2]}
        for held, other in (("odd", "even"), ("even", "odd")):
            docs = halves[held]
            gold = [kb_id_set(ent.kb_id_) for doc in docs for ent in doc.ents]
            n = sum(1 for g in gold if g)
            more = kb_with(data_dir, set_name, linker_kb, halves[other], pooled=pooled)
            both = LinearReranker()
            report = train_reranker(both, more, list(train_docs) + list(halves[other]), linker_config=config, folds=folds)
            msg.info(f"{set_name}: reranker on training + {other} docs: {report}")
            retargeted = LinearReranker().from_bytes(trained.to_bytes())
            retargeted.set_target(more)
            # labels name the other half; the totals over both halves call it "other"
            runs = [
                ("training mentions", linker_kb, None),
                ("training mentions + reranker", linker_kb, trained),
                ("+ {} half's mentions", more, None),
                ("+ {} half's mentions + reranker (training)", more, retargeted),
                ("+ {0} half's mentions + reranker (training + {0})", more, both),
            ]
            for label, kb, model in runs:
                acc, _, _ = evaluate(kb, docs, gold, config, reranker=model)
                rows.append((set_name, f"{held} docs ({n})", label.format(other), f"{acc[1]:.3f}", f"{acc[5]:.3f}"))
                total = totals.setdefault(label.format("other"), [0.0, 0.0, 0])
                total[0] += acc[1] * n
                total[1] += acc[5] * n
                total[2] += n
        for name, (hit1, hit5, n) in totals.items():
            rows.append((set_name, f"both halves ({n})", name, f"{hit1 / n:.3f}", f"{hit5 / n:.3f}"))
    msg.table(rows, header=("set", "scored", "KB and reranker", "acc@1", "acc@5"), divider=True)


if __name__ == "__main__":
    typer.run(main)
