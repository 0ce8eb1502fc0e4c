from __future__ import annotations

import shutil

import pytest

from spacy_sapel.errors import IndexLoadError
from spacy_sapel.index import DenseIndex
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB


def test_search_keeps_best_score_per_concept(toy_linker_kb):
    (cands,) = toy_linker_kb.search(["head pain"], top_k=6)
    ids = [cid for cid, _ in cands]
    assert ids[0] == "C1"
    assert len(ids) == len(set(ids)) == 6  # every concept once, although C1 has 4 names
    scores = [s for _, s in cands]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("mention", ["", "  ", "\x00", "\u200b", "\n\u200b\t"])
def test_a_mention_with_nothing_visible_gets_no_candidates(toy_linker_kb, mention):
    found = toy_linker_kb.search([mention, "flu", mention], top_k=2)
    assert found[0] == found[2] == []
    assert found[1][0][0] == "C5"
    assert toy_linker_kb.search([mention], top_k=2) == [[]]


def test_search_encodes_identical_mentions_once(toy_linker_kb, monkeypatch):
    seen = []
    encode = toy_linker_kb.encoder.encode

    def spy(texts, **kwargs):
        seen.append(list(texts))
        return encode(texts, **kwargs)

    monkeypatch.setattr(toy_linker_kb.encoder, "encode", spy)
    result = toy_linker_kb.search(["flu", "CKD", "flu", "flu"], top_k=2)
    assert seen == [["flu", "CKD"]]
    assert result[0] == result[2] == result[3]
    assert result[0][0][0] == "C5" and result[1][0][0] == "C3"


def test_search_with_no_mentions_and_bad_top_k(toy_linker_kb):
    assert toy_linker_kb.search([], top_k=3) == []
    with pytest.raises(ValueError, match="top_k"):
        toy_linker_kb.search(["flu"], top_k=0)


def test_top_k_larger_than_the_kb(toy_linker_kb):
    (cands,) = toy_linker_kb.search(["flu"], top_k=50)
    assert len(cands) == len(toy_linker_kb.kb)


def test_round_trip_and_meta(toy_linker_kb, tmp_path):
    toy_linker_kb.to_disk(tmp_path / "kb")
    loaded = LinkerKB.from_disk(tmp_path / "kb")
    mentions = ["heart attack", "chronic kidney failure", "asthma"]
    assert loaded.search(mentions, top_k=3) == toy_linker_kb.search(mentions, top_k=3)
    meta = toy_linker_kb.meta
    assert meta["index"]["fingerprint"] == toy_linker_kb.encoder.fingerprint
    assert meta["kb"]["n_concepts"] == 6


def test_missing_and_incomplete_dirs(toy_kb_dir, tmp_path):
    with pytest.raises(IndexLoadError, match="not found"):
        LinkerKB.from_disk(tmp_path / "absent")
    broken = tmp_path / "broken"
    shutil.copytree(toy_kb_dir, broken)
    shutil.rmtree(broken / "index")
    with pytest.raises(IndexLoadError, match="index missing"):
        LinkerKB.from_disk(broken)


def test_index_of_another_kb_is_refused(toy_linker_kb):
    other_kb = KnowledgeBase.from_concepts([Concept("Z", "zebra"), Concept("Y", "yak")])
    with pytest.raises(IndexLoadError, match="E301"):
        LinkerKB(encoder=toy_linker_kb.encoder, kb=other_kb, index=toy_linker_kb.index)


def test_interrupted_write_keeps_the_previous_kb_dir(toy_linker_kb, tmp_path, monkeypatch):
    path = tmp_path / "kb"
    toy_linker_kb.to_disk(path)

    def fail(self, p):
        raise RuntimeError("disk full")

    monkeypatch.setattr(DenseIndex, "to_disk", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        toy_linker_kb.to_disk(path)
    monkeypatch.undo()
    assert LinkerKB.from_disk(path).search(["flu"], top_k=1)[0][0][0] == "C5"
    assert [p.name for p in tmp_path.iterdir()] == ["kb"]  # no temporary left behind


def test_build_refuses_an_empty_kb(tiny_encoder):
    with pytest.raises(ValueError, match="E004"):
        LinkerKB.build(KnowledgeBase(name="empty"), tiny_encoder)
