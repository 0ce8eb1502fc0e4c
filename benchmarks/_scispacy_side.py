"""scispaCy's side of ``vs_scispacy.py``, run with the interpreter of a venv that has
scispaCy (its pins, numpy<2 among them, conflict with ours). Imports neither
spacy_sapel nor anything outside scispaCy's own requirements.

    python _scispacy_side.py WORK_DIR

reads ``WORK_DIR/kb.jsonl`` (scispaCy ``Entity`` records) and ``WORK_DIR/docs.jsonl``
(``{"text", "ents": [[start, end, label], ...]}``), writes ``WORK_DIR/scispacy.json``.

One deviation from a stock install: ``create_tfidf_ann_index`` refuses to run with
scipy >= 1.11 because it *saves* the TF-IDF vectors as float16; with ``out_path=None``
nothing is saved, so the guard is lifted for the call (the index is built exactly as
scispaCy builds it: char_wb 3-grams, min_df 10, HNSW M=100, efConstruction 2000).
"""
import json
import resource
import sys
import time
from pathlib import Path

import scispacy.candidate_generation as candidate_generation
import spacy
from scispacy.candidate_generation import CandidateGenerator, create_tfidf_ann_index
from scispacy.linking import EntityLinker
from scispacy.linking_utils import Entity, KnowledgeBase


def main(work: Path) -> None:
    with (work / "kb.jsonl").open(encoding="utf8") as f:
        entities = [Entity(**json.loads(line)) for line in f]
    kb = KnowledgeBase(entities)
    candidate_generation.scipy_supports_sparse_float16 = lambda: True
    start = time.perf_counter()
    aliases, vectorizer, ann_index = create_tfidf_ann_index(None, kb)
    build_s = time.perf_counter() - start
    generator = CandidateGenerator(ann_index, vectorizer, aliases, kb)
    # every candidate kept (MEDIC has no definitions; the default threshold 0.7 and
    # the definition filter would drop most of them), top 5 distinct concepts
    linker = EntityLinker(
        candidate_generator=generator,
        resolve_abbreviations=False,
        threshold=0.0,
        filter_for_definitions=False,
        max_entities_per_mention=5,
    )
    nlp = spacy.blank("en")
    docs = []
    with (work / "docs.jsonl").open(encoding="utf8") as f:
        for line in f:
            record = json.loads(line)
            doc = nlp.make_doc(record["text"])
            doc.ents = [
                doc.char_span(s, e, label=label, alignment_mode="expand")
                for s, e, label in record["ents"]
            ]
            docs.append(doc)
    n_mentions = sum(len(doc.ents) for doc in docs)
    start = time.perf_counter()
    for doc in docs:  # the linker's own API: one doc per call (it has no batching)
        linker(doc)
    link_s = time.perf_counter() - start
    candidates = [[[cid, score] for cid, score in ent._.kb_ents] for doc in docs for ent in doc.ents]
    result = {
        "build_s": build_s,
        "link_s": link_s,
        "n_mentions": n_mentions,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "candidates": candidates,
    }
    (work / "scispacy.json").write_text(json.dumps(result), encoding="utf8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
