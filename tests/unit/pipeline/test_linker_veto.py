"""Linking as evidence: ``veto_threshold`` drops or relabels entities that the linker
cannot ground; off by default."""
from __future__ import annotations

import pytest
import spacy
from confection import ConfigValidationError
from sapel_test_utils import doc_with_ents, linker_nlp

TEXT = "a headache and a bad pain in the kidney and aspirin"
SPANS = [("headache", "DISEASE"), ("bad pain in the kidney", "DISEASE"), ("aspirin", "CHEMICAL")]


def best_scores(toy_linker_kb):
    """The best link score of each DISEASE mention without a veto."""
    nlp = linker_nlp(toy_linker_kb, labels=["DISEASE"])
    doc = nlp(doc_with_ents(nlp, TEXT, SPANS))
    return [ent._.kb_candidates[0][1] for ent in doc.ents if ent.label_ == "DISEASE"]


@pytest.fixture(scope="module")
def veto(toy_linker_kb):
    """A threshold between the exact alias's score and the paraphrase's."""
    grounded, ungrounded = best_scores(toy_linker_kb)
    assert ungrounded < grounded
    return (grounded + ungrounded) / 2


def test_veto_is_off_by_default(toy_linker_kb):
    nlp = linker_nlp(toy_linker_kb, labels=["DISEASE"])
    assert nlp.get_pipe("sapel_linker").cfg["veto_threshold"] is None
    doc = nlp(doc_with_ents(nlp, TEXT, SPANS))
    assert [e.text for e in doc.ents] == [s for s, _ in SPANS]


def test_veto_drops_entities_below_the_threshold(toy_linker_kb, veto):
    nlp = linker_nlp(toy_linker_kb, labels=["DISEASE"], veto_threshold=veto)
    doc = nlp(doc_with_ents(nlp, TEXT, SPANS))
    # the unlinked label (CHEMICAL) is never vetoed: the linker has no evidence on it
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("headache", "DISEASE", "C1"),
        ("aspirin", "CHEMICAL", ""),
    ]
    # the dropped mention's candidates stay readable at its offsets
    start = TEXT.index("bad pain")
    span = doc.char_span(start, start + len("bad pain in the kidney"))
    assert span._.kb_candidates[0][1] < veto


def test_veto_relabels_with_the_configured_label(toy_linker_kb, veto):
    nlp = linker_nlp(
        toy_linker_kb, labels=["DISEASE"], veto_threshold=veto, veto_action="relabel", veto_label="NOT_IN_KB"
    )
    doc = nlp(doc_with_ents(nlp, TEXT, SPANS))
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("headache", "DISEASE", "C1"),
        ("bad pain in the kidney", "NOT_IN_KB", ""),
        ("aspirin", "CHEMICAL", ""),
    ]
    assert doc.ents[1]._.kb_candidates[0][1] < veto
    # pipe and call agree
    (piped,) = nlp.pipe([doc_with_ents(nlp, TEXT, SPANS)])
    assert [(e.text, e.label_) for e in piped.ents] == [(e.text, e.label_) for e in doc.ents]


def test_veto_above_the_nil_threshold_also_clears_the_kb_id(toy_linker_kb, veto):
    # NIL threshold below both scores: both would be linked; the veto still removes one
    nlp = linker_nlp(toy_linker_kb, labels=["DISEASE"], threshold=-1.0, veto_threshold=veto, veto_action="relabel")
    doc = nlp(doc_with_ents(nlp, TEXT, SPANS[:2]))
    assert [(e.label_, bool(e.kb_id_)) for e in doc.ents] == [("DISEASE", True), ("UNGROUNDED", False)]


def test_entity_without_candidates_is_vetoed(toy_linker_kb):
    # the type filter leaves no concept for DISEASE mentions: no evidence at all
    nlp = linker_nlp(toy_linker_kb, type_filter={"DISEASE": ["Chemical"]}, veto_threshold=-1.0)
    with pytest.warns(UserWarning):  # W321: no concept has the type
        doc = nlp(doc_with_ents(nlp, "flu", [("flu", "DISEASE")]))
    assert list(doc.ents) == []


@pytest.mark.parametrize(
    "config,code",
    [
        ({"veto_threshold": 1.5}, "E330"),
        ({"veto_label": " "}, "E332"),
    ],
)
def test_bad_veto_options_are_refused(config, code):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=code):
        nlp.add_pipe("sapel_linker", config=config)


@pytest.mark.parametrize("config", [{"veto_action": "hide"}, {"veto_threshold": True}])
def test_veto_options_of_the_wrong_kind_are_refused_naming_the_option(config):
    """spaCy's config validation or our own check: the message names option and value."""
    ((option, value),) = config.items()
    nlp = spacy.blank("en")
    with pytest.raises((ValueError, ConfigValidationError)) as err:
        nlp.add_pipe("sapel_linker", config=config)
    assert option in str(err.value) and str(value) in str(err.value)
