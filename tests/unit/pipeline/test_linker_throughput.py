"""The mention cache and multi-process ``nlp.pipe``: faster, same results."""
from __future__ import annotations

import pytest
import spacy

from spacy_sapel.pipeline import LinkerKB, SapelLinker

from test_linker import TEXTS, doc_with_ents, links, make_nlp

# repeated mentions across docs, so that batches share strings
REPEATED = [TEXTS[i % 2] for i in range(8)] + TEXTS[2:]


def linked(nlp, batch_size=2, **kwargs):
    docs = [doc_with_ents(nlp, *t) for t in REPEATED]
    return [links(doc) for doc in nlp.pipe(docs, batch_size=batch_size, **kwargs)]


def test_cache_does_not_change_results(toy_kb_dir, monkeypatch):
    cached = make_nlp(toy_kb_dir, top_k=3)
    plain = make_nlp(toy_kb_dir, top_k=3, cache_size=0)
    linker_kb = cached.get_pipe("sapel_linker").linker_kb
    searched = []
    search = LinkerKB.search

    def counting(self, mentions, **kwargs):
        searched.extend(mentions)
        return search(self, mentions, **kwargs)

    monkeypatch.setattr(LinkerKB, "search", counting)
    with_cache = linked(cached)
    # with the cache, each distinct string is searched once in the whole stream
    distinct = {"heart attack", "headache", "CKD", "flu", "asthma"}
    assert sorted(searched) == sorted(distinct)
    assert with_cache == linked(plain)
    searched.clear()
    assert linked(cached) == with_cache
    assert searched == []  # everything came from the cache
    assert len(cached.get_pipe("sapel_linker")._cache) == len(distinct)
    assert linker_kb is cached.get_pipe("sapel_linker").linker_kb


def test_cache_is_lru_and_bounded(toy_kb_dir):
    nlp = make_nlp(toy_kb_dir, top_k=3, cache_size=2)
    linker = nlp.get_pipe("sapel_linker")
    nlp(doc_with_ents(nlp, *TEXTS[1]))  # CKD, flu, asthma
    assert [text for text, _ in linker._cache] == ["flu", "asthma"]
    nlp(doc_with_ents(nlp, "flu and MI", [("flu", "D"), ("MI", "D")]))
    assert [text for text, _ in linker._cache] == ["flu", "MI"]


def test_cache_follows_the_kb_and_top_k(toy_kb_dir, drug_linker_kb):
    nlp = make_nlp(toy_kb_dir, top_k=3)
    linker = nlp.get_pipe("sapel_linker")
    doc = nlp(doc_with_ents(nlp, "aspirin", [("aspirin", "D")]))
    toy_ids = {cid for cid, _ in doc.ents[0]._.kb_candidates}
    linker.set_kb(lambda: drug_linker_kb)
    doc = nlp(doc_with_ents(nlp, "aspirin", [("aspirin", "D")]))
    assert doc.ents[0].kb_id_ == "X1" and toy_ids.isdisjoint({"X1", "X2"})
    linker.cfg["top_k"] = 1
    doc = nlp(doc_with_ents(nlp, "aspirin", [("aspirin", "D")]))
    assert len(doc.ents[0]._.kb_candidates) == 1


@pytest.mark.parametrize("value", [-1, 1.5, True, "10"])
def test_bad_cache_size(value):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="E309.*cache_size"):
        SapelLinker(nlp, cache_size=value)
    with pytest.raises(ValueError, match="E309.*cache_size"):
        nlp.add_pipe("sapel_linker", config={"cache_size": -1})


def test_n_process_gives_the_same_results(toy_kb_dir, tmp_path):
    """Two worker processes (the KB columns and the index are memory-mapped from the
    saved pipeline) link exactly as one process does."""
    nlp = make_nlp(toy_kb_dir, top_k=3)
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    one = linked(loaded)
    two = linked(loaded, n_process=2)
    assert [[(t, i) for t, i, _ in doc] for doc in two] == [
        [(t, i) for t, i, _ in doc] for doc in one
    ]
    for doc_one, doc_two in zip(one, two):
        for (_, _, c1), (_, _, c2) in zip(doc_one, doc_two):
            assert [cid for cid, _ in c1] == [cid for cid, _ in c2]
            assert [s for _, s in c1] == pytest.approx([s for _, s in c2], abs=1e-5)


ALL_OPTIONS_TEXTS = [
    ("Chronic kidney disease (CKD) worsens; CKD and flu.",
     [("Chronic kidney disease", "DISEASE"), ("CKD", "DISEASE"), ("CKD", "DISEASE"), ("flu", "DISEASE")]),
    ("aspirin for a head ache", [("aspirin", "CHEMICAL"), ("head ache", "DISEASE")]),
    ("myocardial infarction (MI) after MI", [("myocardial infarction", "DISEASE"), ("MI", "DISEASE"), ("MI", "DISEASE")]),
] * 3


def test_all_quality_options_are_deterministic_across_runs_and_processes(toy_linker_kb, tmp_path):
    """Abbreviations, sparse fusion and a type filter: the same ids and scores in one
    process twice, and with two worker processes."""
    kb_dir = tmp_path / "kb"
    hybrid = LinkerKB(encoder=toy_linker_kb.encoder, kb=toy_linker_kb.kb, index=toy_linker_kb.index)
    hybrid.add_sparse_index()
    hybrid.to_disk(kb_dir)
    nlp = make_nlp(kb_dir, top_k=3, sparse_weight=0.5, abbreviations=True,
                   type_filter={"DISEASE": ["Disease"], "CHEMICAL": ["Chemical"]})
    nlp.to_disk(tmp_path / "nlp")

    def run(nlp, **kwargs):
        docs = [doc_with_ents(nlp, *t) for t in ALL_OPTIONS_TEXTS]
        return [links(doc) for doc in nlp.pipe(docs, batch_size=2, **kwargs)]

    loaded = spacy.load(tmp_path / "nlp")
    first = run(loaded)
    assert run(spacy.load(tmp_path / "nlp")) == first
    two = run(loaded, n_process=2)
    for doc_one, doc_two in zip(first, two):
        assert [(t, i) for t, i, _ in doc_one] == [(t, i) for t, i, _ in doc_two]
        for (_, _, c1), (_, _, c2) in zip(doc_one, doc_two):
            assert [cid for cid, _ in c1] == [cid for cid, _ in c2]
            assert [s for _, s in c1] == pytest.approx([s for _, s in c2], abs=1e-5)
    # the options took effect: the type filter leaves the chemical without a
    # candidate (no Chemical concept in the KB), the short form got its long form's
    # concept as a candidate
    chemical = first[1][0]
    assert chemical[0] == "aspirin" and chemical[1] == "" and chemical[2] == []
    ckd = first[0][1]
    assert "C3" in [cid for cid, _ in ckd[2]]
