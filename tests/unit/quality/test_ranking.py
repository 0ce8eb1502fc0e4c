"""Ordering candidates: ties broken by KB priors, short forms through their long form,
one sense per document; each can be switched off."""
from __future__ import annotations

import logging

import pytest
import spacy
from sapel_test_utils import doc_with_ents, linker_nlp

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.ranking import break_ties, one_sense

# "MD" names two concepts; KB order puts the general one first
CONCEPTS = [
    Concept("D1", "muscular dystrophy", aliases=["MD"], types=["Disease"]),
    Concept("OMIM:2", "muscular dystrophy type 2", aliases=["MD"], types=["Disease"]),
    Concept("D3", "myotonic dystrophy", types=["Disease"]),
    Concept("D4", "asthma", types=["Disease"]),
]
# the annotators used "MD" for the numbered type, and never for D1
PRIORS = [("MD", "OMIM:2"), ("MD", "OMIM:2"), ("asthma", "D4")]


def build(encoder, priors=True) -> LinkerKB:
    kb = KnowledgeBase.from_concepts(CONCEPTS, name="ties")
    if priors:
        kb.add_priors(PRIORS, source="test")
    return LinkerKB.build(kb, encoder)


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")


def link(linker_kb, text, mentions, **config):
    nlp = linker_nlp(linker_kb, **{"top_k": 3, **config})
    return nlp(doc_with_ents(nlp, text, mentions))


def test_a_tie_is_decided_by_priors_not_kb_order(encoder):
    linker_kb = build(encoder)
    doc = link(linker_kb, "Patients with MD.", [("MD", "DISEASE")])
    cands = doc.ents[0]._.kb_candidates
    assert cands[0][1] == pytest.approx(cands[1][1], abs=1e-6)  # an exact tie
    assert doc.ents[0].kb_id_ == "OMIM:2"
    # switched off (or a KB without priors), the KB order decides as before
    off = link(linker_kb, "Patients with MD.", [("MD", "DISEASE")], priors=False)
    assert off.ents[0].kb_id_ == "D1"


def test_a_kb_without_priors_links_as_before_and_says_so(encoder, caplog):
    with caplog.at_level(logging.INFO, logger="spacy_sapel"):
        doc = link(build(encoder, priors=False), "Patients with MD.", [("MD", "DISEASE")])
    assert doc.ents[0].kb_id_ == "D1"
    assert "has no priors" in caplog.text


def test_priors_survive_to_disk_and_spacy_load(encoder, tmp_path):
    nlp = linker_nlp(build(encoder), top_k=3)
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.get_pipe("sapel_linker").kb.priors.to_dict() == nlp.get_pipe("sapel_linker").kb.priors.to_dict()
    doc = loaded(doc_with_ents(loaded, "Patients with MD.", [("MD", "DISEASE")]))
    assert doc.ents[0].kb_id_ == "OMIM:2"
    copy = linker_nlp(build(encoder, priors=False), top_k=3)
    copy.get_pipe("sapel_linker").from_bytes(nlp.get_pipe("sapel_linker").to_bytes())
    assert copy.get_pipe("sapel_linker").kb.priors.mention_count("md", "OMIM:2") == 2


TEXT = "Myotonic dystrophy (MD) is common; MD is inherited."
MENTIONS = [("Myotonic dystrophy", "DISEASE"), ("MD", "DISEASE"), ("MD", "DISEASE")]


def test_a_defined_short_form_follows_its_long_form(encoder):
    linker_kb = build(encoder, priors=False)
    merged = link(linker_kb, TEXT, MENTIONS, short_forms="merge")
    # merging the two searches, the short form's own exact (ambiguous) match ties
    # with its long form's and KB order picks D1
    assert [e.kb_id_ for e in merged.ents] == ["D3", "D1", "D1"]
    first = link(linker_kb, TEXT, MENTIONS, short_forms="long_form_first")
    assert [e.kb_id_ for e in first.ents] == ["D3", "D3", "D3"]
    # the short form's own candidates follow the long form's
    ids = [cid for cid, _ in first.ents[1]._.kb_candidates]
    assert ids[0] == "D3" and "D1" in ids


IMPLICIT = "Myotonic dystrophy is common; MD is inherited."
IMPLICIT_MENTIONS = [("Myotonic dystrophy", "DISEASE"), ("MD", "DISEASE")]


def test_an_undefined_short_form_follows_the_mention_it_spells(encoder):
    linker_kb = build(encoder, priors=False)
    doc = link(linker_kb, IMPLICIT, IMPLICIT_MENTIONS)
    # "MD" is never defined, but "Myotonic dystrophy" is mentioned: MD follows it
    assert [e.kb_id_ for e in doc.ents] == ["D3", "D3"]
    ids = [cid for cid, _ in doc.ents[1]._.kb_candidates]
    assert ids[0] == "D3" and "D1" in ids
    # it is not a definition in the text
    assert doc._.sapel_abbreviations == []
    # switched off, the short form's own (tied) match and KB order decide
    for off in ({"implicit_short_forms": False}, {"abbreviations": False}):
        plain = link(linker_kb, IMPLICIT, IMPLICIT_MENTIONS, **off)
        assert [e.kb_id_ for e in plain.ents] == ["D3", "D1"]
        assert plain.ents[1]._.kb_candidates[0][1] == pytest.approx(1.0, abs=1e-4)


def test_a_definition_wins_over_a_mention_the_short_form_spells(encoder):
    linker_kb = build(encoder, priors=False)
    text = "Myotonic dystrophy and muscular dystrophy (MD) differ."
    mentions = [("Myotonic dystrophy", "DISEASE"), ("muscular dystrophy", "DISEASE"), ("MD", "DISEASE")]
    doc = link(linker_kb, text, mentions, implicit_short_forms=True)
    assert [e.kb_id_ for e in doc.ents] == ["D3", "D1", "D1"]


def test_unknown_short_form_policy(encoder):
    with pytest.raises(ValueError, match="E350.*shortest"):
        linker_nlp(build(encoder), short_forms="shortest")


def test_break_ties_keeps_score_order_and_uses_gold_counts():
    kb = KnowledgeBase.from_concepts(CONCEPTS)
    kb.add_priors([("asthma", "D4"), ("x", "D3"), ("x", "D3")], source="t")
    cands = [("D1", 0.9), ("D4", 0.9), ("D3", 0.9), ("OMIM:2", 0.95)]
    # unseen string: the concept that was gold more often first within the tie
    assert [c for c, _ in break_ties(cands, ["unseen"], kb.priors)] == ["OMIM:2", "D3", "D4", "D1"]
    assert [c for c, _ in break_ties(cands, ["unseen"], None)] == ["OMIM:2", "D1", "D4", "D3"]


def test_one_sense_per_document(encoder):
    linker_kb = build(encoder, priors=False)
    nlp = linker_nlp(linker_kb, top_k=3, one_sense_per_doc=True)
    pools = [[("A", 0.9), ("B", 0.8)], [("B", 0.9), ("A", 0.85)], [("B", 0.7)]]
    mentions = [type("M", (), {"text": t})() for t in ("flu", "Flu", "cold")]
    assert [p[0][0] for p in one_sense(mentions, pools)] == ["A", "A", "B"]
    assert nlp.get_pipe("sapel_linker").cfg["one_sense_per_doc"] is True
