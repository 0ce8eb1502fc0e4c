"""What the vocabulary feature of KB-aware NER (``sapel_vocab_tagger``) sees: the tags
of a vocabulary's names on a PubTator development corpus, scored as a dictionary
NER against the gold mentions of one type (span P/R/F, and the share of gold-mention
tokens that carry a tag), with the seconds to build the trie and the tagging speed.

    python benchmarks/vocab_tags.py ../shared/data/ctd-medic-2017/CTD_diseases.tsv.gz ctd \\
        ../shared/data/bc5cdr/CDR_DevelopmentSet.PubTator.txt --type Disease
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import List, Set, Tuple

import spacy
from spacy.tokens import Doc
from spacy.util import registry
from wasabi import msg

from spacy_sapel.training.pubtator_docs import pubtator_to_docs


def tagged_spans(tags: List[str]) -> Set[Tuple[int, int]]:
    spans, start = set(), None
    for i, tag in enumerate(tags):
        if tag == "U":
            spans.add((i, i + 1))
        elif tag == "B":
            start = i
        elif tag == "L" and start is not None:
            spans.add((start, i + 1))
            start = None
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vocab", type=Path, help="vocabulary file")
    parser.add_argument("reader", help="KB reader of the vocabulary (ctd, medic, nemo_index, ...)")
    parser.add_argument("corpus", type=Path, help="PubTator development corpus")
    parser.add_argument("--type", default="Disease", help="gold mention type to score against ('*': all)")
    args = parser.parse_args()

    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("sapel_vocab_tagger")
    names = registry.misc.get("sapel.vocab_names_from_reader.v1")(str(args.vocab), args.reader)()
    start = time.perf_counter()
    tagger.set_names(names)
    build = time.perf_counter() - start
    docs: List[Doc] = list(pubtator_to_docs(nlp, args.corpus))
    start = time.perf_counter()
    for doc in docs:
        tagger(doc)
    seconds = time.perf_counter() - start
    n_tokens = sum(len(doc) for doc in docs)
    gold = pred = hit = gold_tokens = covered = 0
    for doc in docs:
        spans = {(e.start, e.end) for e in doc.ents if args.type in ("*", e.label_)}
        found = tagged_spans(doc._.sapel_vocab_tags)
        gold, pred, hit = gold + len(spans), pred + len(found), hit + len(spans & found)
        for s, e in spans:
            gold_tokens += e - s
            covered += sum(tag != "O" for tag in doc._.sapel_vocab_tags[s:e])
    p, r = hit / max(pred, 1), hit / max(gold, 1)
    msg.table(
        [
            ("names / phrases", f"{len(names):,} / {len(tagger.phrases):,}"),
            ("trie build s", f"{build:.1f}"),
            ("docs / tokens", f"{len(docs):,} / {n_tokens:,}"),
            ("tokens per s", f"{n_tokens / seconds:,.0f}"),
            (f"{args.type} spans exactly tagged P / R / F", f"{p:.3f} / {r:.3f} / {2 * p * r / max(p + r, 1e-9):.3f}"),
            (f"{args.type} mention tokens with a tag", f"{covered / max(gold_tokens, 1):.3f}"),
        ]
    )


if __name__ == "__main__":
    main()
