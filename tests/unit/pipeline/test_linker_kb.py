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


@pytest.fixture(scope="module")
def typed_linker_kb(tiny_encoder):
    """Many Disease concepts and a few Chemical ones, so that a Chemical filter finds
    nothing among the nearest names of most mentions."""
    words = ["cardio", "neuro", "hepato", "nephro", "osteo", "derma", "gastro", "pneumo"]
    ends = ["itis", "pathy", "oma", "algia", "emia", "osis"]
    concepts = [
        Concept(f"D{i}", f"{a}{b} type {i}", aliases=[f"{b} of the {a} {i}"], types=["Disease"])
        for i, (a, b) in enumerate((a, b) for a in words for b in ends)
    ]
    concepts += [
        Concept(f"X{i}", name, types=["Chemical"])
        for i, name in enumerate(["aspirin", "insulin", "cisplatin", "metformin", "heparin"])
    ]
    kb = KnowledgeBase.from_concepts(concepts, name="typed")
    return LinkerKB.build(kb, tiny_encoder, index_options={"device": "cpu"})


def test_type_filter_selects_in_one_search_with_the_results_of_widening(typed_linker_kb, monkeypatch):
    mentions = ["hepatitis", "kidney pain", "aspirin", "bone tumour", "skin rash", "insulin"]
    types = [frozenset({"Chemical"})] * 4 + [frozenset({"Disease"}), None]
    index = typed_linker_kb.index
    assert index.supports_selection
    calls = []
    search = DenseIndex.search

    def counting(self, queries, k, **options):
        calls.append((len(queries), k, options.get("allowed") is not None))
        return search(self, queries, k, **options)

    monkeypatch.setattr(DenseIndex, "search", counting)
    kwargs = dict(top_k=4, alias_k=8, types=types)
    selected = typed_linker_kb.search(mentions, **kwargs)
    # one search per type set (Chemical, Disease, none), each in one pass
    assert sorted(calls) == sorted([(4, 8, True), (1, 8, True), (1, 8, False)])
    calls.clear()
    monkeypatch.setattr(DenseIndex, "supports_selection", property(lambda self: False))
    widened = typed_linker_kb.search(mentions, **kwargs)
    assert len(calls) > 1 and all(not filtered for *_, filtered in calls)
    assert [[c for c, _ in found] for found in selected] == [[c for c, _ in found] for found in widened]
    for a, b in zip(selected, widened):
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-6)
    kb = typed_linker_kb.kb
    for found, allowed in zip(selected, types):
        assert len(found) == 4
        if allowed is not None:
            assert all(allowed & set(kb[c].types) for c, _ in found)


def test_build_embeds_the_names_through_the_embed_hook(toy_linker_kb):
    """One build path: a hook (Ray's actor pool, say) embeds the names instead of the
    encoder in this process; everything else, the sparse index included, is built
    as without it."""
    kb, encoder = toy_linker_kb.kb, toy_linker_kb.encoder
    calls = []

    def embed(names):
        calls.append(list(names))
        return encoder.encode(names)

    built = LinkerKB.build(kb, encoder, sparse=True, embed=embed)
    assert calls == [kb.alias_table()[0]]
    reference = LinkerKB.build(kb, encoder, sparse=True)
    for weight in (0.0, 0.5):
        assert built.search(["head pain", "flue"], top_k=3, sparse_weight=weight) == (
            reference.search(["head pain", "flue"], top_k=3, sparse_weight=weight)
        )


def test_an_embed_hook_that_returns_the_wrong_shape_is_a_coded_error(toy_linker_kb):
    kb, encoder = toy_linker_kb.kb, toy_linker_kb.encoder
    with pytest.raises(ValueError, match=rf"E364.*for {kb.n_names} names; expected \({kb.n_names}, {encoder.dim}\)"):
        LinkerKB.build(kb, encoder, embed=lambda names: encoder.encode(names[:-1]))
