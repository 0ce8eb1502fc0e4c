"""Linking as evidence: ``veto_threshold`` drops or relabels entities that the linker
cannot ground; off by default."""
from __future__ import annotations

import pytest
import spacy
from confection import ConfigValidationError
from sapel_test_utils import doc_with_ents, linker_nlp

from spacy_sapel.training.calibrate import best_veto, veto_outcomes
from spacy_sapel.training.ner_eval import score_joint, score_ner

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


# --- choosing the threshold on development data (calibrate-veto) ---

DEV = [
    # an NER that finds the gold mentions, one paraphrase the KB barely resembles, a
    # chemical the linker does not judge, and two spans that are not entities at all
    ("a headache and a bad pain in the kidney and aspirin",
     [("headache", "DISEASE", "C1"), ("bad pain in the kidney", "DISEASE", "C3"), ("aspirin", "CHEMICAL", "")]),
    ("flu on a sunny day, then asthma and a long walk",
     [("flu", "DISEASE", "C5"), ("asthma", "DISEASE", "C6")]),
]
RULES = ["headache", "bad pain in the kidney", "flu", "sunny day", "asthma", "long walk"]


def ruler_linker_nlp(toy_linker_kb, **config):
    """An entity ruler as the NER (DISEASE rules, aspirin as CHEMICAL), then the linker."""
    nlp = linker_nlp(toy_linker_kb, labels=["DISEASE"], **config)
    ruler = nlp.add_pipe("entity_ruler", before="sapel_linker")
    ruler.add_patterns([{"label": "DISEASE", "pattern": p} for p in RULES] + [{"label": "CHEMICAL", "pattern": "aspirin"}])
    return nlp


def dev_docs(nlp):
    docs = []
    for text, ents in DEV:
        doc = doc_with_ents(nlp, text, [(s, label) for s, label, _ in ents])
        for ent, (_, _, kb_id) in zip(doc.ents, ents):
            ent.kb_id_ = kb_id
        doc.ents = list(doc.ents)
        docs.append(doc)
    return docs


def test_veto_curve_is_what_the_vetoing_pipeline_scores(toy_linker_kb):
    """Every point of the curve (computed from one run with the veto off) equals the
    scores of the pipeline run with that veto_threshold."""
    nlp = ruler_linker_nlp(toy_linker_kb, veto_threshold=0.5)
    gold = dev_docs(nlp)
    outcomes = veto_outcomes(nlp, gold, "sapel_linker")
    assert nlp.get_pipe("sapel_linker").cfg["veto_threshold"] == 0.5  # restored
    assert len(outcomes.scores) == len(RULES)  # the chemical is not judged
    thresholds = outcomes.thresholds()
    assert thresholds[0] is None and len(thresholds) >= 3
    for point in outcomes.curve(thresholds):
        vetoing = ruler_linker_nlp(toy_linker_kb, veto_threshold=point.threshold)
        preds = list(vetoing.pipe(doc.text for doc in gold))
        ner, joint = score_ner(preds, gold), score_joint(preds, gold, labels=["DISEASE"])
        assert (point.ner["p"], point.ner["r"], point.ner["f"]) == pytest.approx((ner["p"], ner["r"], ner["f"]))
        for label, scores in ner["per_type"].items():
            assert point.per_type[label] == pytest.approx(scores)
        assert (point.joint["p"], point.joint["r"], point.joint["f"]) == pytest.approx((joint["p"], joint["r"], joint["f"]))
        n_ents = sum(len(d.ents) for d in preds)
        assert point.dropped == len(RULES) + 1 - n_ents


def test_best_veto_drops_what_the_kb_does_not_ground(toy_linker_kb):
    nlp = ruler_linker_nlp(toy_linker_kb)
    outcomes = veto_outcomes(nlp, dev_docs(nlp), "sapel_linker")
    points = outcomes.curve()
    off, best = points[0], best_veto(points)
    # KB names score 1.0 and stay; the best threshold drops at least one of the two
    # non-entities (the tiny random encoder may rank the other above the paraphrase)
    assert off.threshold is None and off.dropped == 0
    assert off.ner["p"] == pytest.approx(5 / 7) and off.ner["r"] == pytest.approx(1.0)
    assert best.threshold is not None and best.ner["f"] > off.ner["f"]
    assert best.ner["f"] == max(p.ner["f"] for p in points)
    assert best.per_type["CHEMICAL"]["f"] == 1.0  # never judged, never dropped
    kept = ruler_linker_nlp(toy_linker_kb, veto_threshold=best.threshold)
    texts = {e.text for doc in kept.pipe(t for t, _ in DEV) for e in doc.ents}
    assert len(texts & {"sunny day", "long walk"}) < 2
    assert {"headache", "flu", "asthma", "aspirin"} <= texts
    # ties go to the first point: a curve where nothing helps keeps the veto off
    assert best_veto([off, off]).threshold is None
