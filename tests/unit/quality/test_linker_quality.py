"""Abbreviation-aware linking, hybrid dense + sparse candidates and type filters, in
the sapel_linker component."""
from __future__ import annotations

import pytest
import spacy
from sapel_test_utils import doc_with_ents, linker_nlp
from spacy.tokens import DocBin

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB

CONCEPTS = [
    Concept("D1", "wilson disease", aliases=["hepatolenticular degeneration"], types=["Disease"]),
    Concept("D2", "headache", aliases=["cephalalgia"], types=["Disease"]),
    Concept("D3", "influenza", aliases=["flu"], types=["Disease"]),
    Concept("D4", "asthma", types=["Disease"]),
    Concept("X1", "aspirin", types=["Chemical"]),
    Concept("X2", "insulin", types=["Chemical"]),
    Concept("X3", "heparin", types=["Chemical"]),
]


@pytest.fixture(scope="module")
def linker_kb(tiny_bert_dir):
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")
    return LinkerKB.build(KnowledgeBase.from_concepts(CONCEPTS), encoder, sparse=True)


def make_nlp(linker_kb, **config):
    return linker_nlp(linker_kb, initialize=True, **{"top_k": 3, **config})


TEXT = "Wilson disease (WD) is rare; untreated WD harms the liver."
MENTIONS = [("Wilson disease", "DISEASE"), ("WD", "DISEASE"), ("WD", "DISEASE")]


def test_short_forms_link_through_their_long_form(linker_kb):
    nlp = make_nlp(linker_kb, abbreviations=True)
    doc = nlp(doc_with_ents(nlp, TEXT, MENTIONS))
    assert [e.kb_id_ for e in doc.ents] == ["D1", "D1", "D1"]
    assert doc.ents[2]._.kb_candidates[0] == ("D1", pytest.approx(1.0, abs=1e-4))
    assert [(s.text, lf.text) for s, lf in doc._.sapel_abbreviations] == [("WD", "Wilson disease")]
    # the definitions are stored as plain offsets: they survive a DocBin round trip
    # (and so nlp.pipe with n_process > 1)
    copy = list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]
    assert [(s.text, lf.text) for s, lf in copy._.sapel_abbreviations] == [("WD", "Wilson disease")]
    assert copy._.sapel_abbreviations[0][0].start == doc._.sapel_abbreviations[0][0].start


def test_without_the_option_short_forms_are_linked_as_they_are(linker_kb):
    with_abbr = make_nlp(linker_kb, abbreviations=True)(doc_with_ents(spacy.blank("en"), TEXT, MENTIONS))
    plain = make_nlp(linker_kb, abbreviations=False)(doc_with_ents(spacy.blank("en"), TEXT, MENTIONS))
    assert plain._.sapel_abbreviations is None
    # the short form alone is never an exact name, so its best score is below 1
    assert plain.ents[1]._.kb_candidates[0][1] < with_abbr.ents[1]._.kb_candidates[0][1]


def test_sparse_fusion_finds_spelling_variants(linker_kb):
    nlp = make_nlp(linker_kb, sparse_weight=1.0)
    doc = nlp(doc_with_ents(nlp, "headaches and asthmatic influenzas", [("headaches", "DISEASE"), ("asthmatic", "DISEASE"), ("influenzas", "DISEASE")]))
    assert [e.kb_id_ for e in doc.ents] == ["D2", "D4", "D3"]


def test_fusion_weight_moves_scores_between_retrievers(linker_kb):
    dense = linker_kb.search(["headaches"], top_k=7)[0]
    lexical = linker_kb.search(["headaches"], top_k=7, sparse_weight=1.0)[0]
    half = linker_kb.search(["headaches"], top_k=7, sparse_weight=0.5)[0]
    d, s, h = dict(dense), dict(lexical), dict(half)
    assert h["D2"] == pytest.approx(0.5 * d["D2"] + 0.5 * s["D2"], abs=1e-5)


def test_sparse_weight_without_a_sparse_index(tiny_bert_dir, linker_kb):
    bare = LinkerKB(encoder=linker_kb.encoder, kb=linker_kb.kb, index=linker_kb.index)
    with pytest.raises(ValueError, match="E311"):
        bare.search(["flu"], top_k=1, sparse_weight=0.5)
    # the component builds the sparse index it needs at initialize
    nlp = make_nlp(bare, sparse_weight=0.5)
    assert nlp.get_pipe("sapel_linker").linker_kb.sparse is not None


def test_type_filter_applies_before_top_k(linker_kb):
    nlp = make_nlp(linker_kb, top_k=3, type_filter={"CHEMICAL": ["Chemical"], "DISEASE": ["Disease"]})
    doc = nlp(doc_with_ents(nlp, "aspirin for flu", [("aspirin", "CHEMICAL"), ("flu", "DISEASE")]))
    aspirin, flu = doc.ents
    assert aspirin.kb_id_ == "X1"
    assert [c for c, _ in aspirin._.kb_candidates] and all(c.startswith("X") for c, _ in aspirin._.kb_candidates)
    assert len(aspirin._.kb_candidates) == 3  # filled from the allowed concepts
    assert all(c.startswith("D") for c, _ in flu._.kb_candidates)
    # the same string under another label is another query (and cache entry)
    doc = nlp(doc_with_ents(nlp, "aspirin", [("aspirin", "DISEASE")]))
    assert all(c.startswith("D") for c, _ in doc.ents[0]._.kb_candidates)


def test_type_filter_with_no_allowed_concept_gives_nil(linker_kb):
    nlp = make_nlp(linker_kb, type_filter={"GENE": ["Gene"]})
    doc = nlp(doc_with_ents(nlp, "BRCA1", [("BRCA1", "GENE")]))
    assert doc.ents[0].kb_id_ == "" and doc.ents[0]._.kb_candidates == []


@pytest.mark.parametrize(
    "config,match",
    [({"sparse_weight": 1.5}, "sparse_weight"), ({"type_filter": {"DISEASE": "Disease"}}, "type_filter")],
)
def test_bad_quality_options(config, match):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=match):  # ours (E310) or spaCy's config check
        nlp.add_pipe("sapel_linker", config=config)


def test_all_options_round_trip(linker_kb, tmp_path):
    config = {"abbreviations": True, "sparse_weight": 0.3, "type_filter": {"DISEASE": ["Disease"]}}
    nlp = make_nlp(linker_kb, **config)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("sapel_linker").linker_kb.sparse is not None
    nlp2 = spacy.blank("en")
    # the settings come from the config, the bytes carry the KB parts
    nlp2.add_pipe("sapel_linker", config={"top_k": 3, **config}).from_bytes(nlp.get_pipe("sapel_linker").to_bytes())
    for other in (loaded, nlp2):
        a = nlp(doc_with_ents(nlp, TEXT, MENTIONS))
        b = other(doc_with_ents(other, TEXT, MENTIONS))
        assert [(e.kb_id_, e._.kb_candidates) for e in a.ents] == [(e.kb_id_, e._.kb_candidates) for e in b.ents]
