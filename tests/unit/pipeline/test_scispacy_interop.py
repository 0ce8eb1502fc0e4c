"""Working next to scispaCy: ``span._.kb_ents`` offered under scispaCy's name when it is
free and never written when scispaCy registered it; our abbreviations live in
``doc._.sapel_abbreviations`` and scispaCy's ``doc._.abbreviations`` are read as input.
scispaCy is not installed here: its registrations are made as its components make them
(``force=True`` in their constructors)."""
from __future__ import annotations

import pytest
from sapel_test_utils import doc_with_ents, linker_nlp
from spacy.tokens import Doc, Span
from spacy.tokens.underscore import Underscore

TEXT = "Head pain is common; HP was treated with rest."
MENTIONS = [("Head pain", "DISEASE"), ("HP", "DISEASE")]


@pytest.fixture
def extensions():
    """Let a test register extensions as scispaCy would; restore the registry after."""
    saved = {kind: dict(getattr(Underscore, kind)) for kind in ("doc_extensions", "span_extensions")}
    for name in ("kb_ents", "long_form"):
        Underscore.span_extensions.pop(name, None)
    Underscore.doc_extensions.pop("abbreviations", None)
    yield
    for kind, registry in saved.items():
        getattr(Underscore, kind).clear()
        getattr(Underscore, kind).update(registry)


def register_scispacy_linker() -> None:
    Span.set_extension("kb_ents", default=[], force=True)


def register_scispacy_abbreviation_detector() -> None:
    Doc.set_extension("abbreviations", default=[], force=True)
    Span.set_extension("long_form", default=None, force=True)


def test_kb_ents_is_kb_candidates_under_scispacys_name(extensions, toy_linker_kb):
    nlp = linker_nlp(toy_linker_kb, top_k=3, labels=["DISEASE"])
    doc = nlp(doc_with_ents(nlp, "flu and aspirin", [("flu", "DISEASE"), ("aspirin", "CHEMICAL")]))
    flu, aspirin = doc.ents
    assert flu._.kb_ents == flu._.kb_candidates and len(flu._.kb_ents) == 3
    assert flu._.kb_ents[0][0] == "C5"
    assert aspirin._.kb_ents == []  # not linked: scispaCy's default


@pytest.mark.parametrize("scispacy_first", [True, False], ids=["scispacy-first", "sapel-first"])
def test_scispacys_kb_ents_is_never_written(extensions, toy_linker_kb, scispacy_first):
    if scispacy_first:
        register_scispacy_linker()
    nlp = linker_nlp(toy_linker_kb, top_k=3)
    if not scispacy_first:
        register_scispacy_linker()
    assert Span.get_extension("kb_ents") == ([], None, None, None)
    doc = nlp(doc_with_ents(nlp, "flu", [("flu", "DISEASE")]))
    (flu,) = doc.ents
    assert flu.kb_id_ == "C5"
    assert flu._.kb_ents == []
    flu._.kb_ents = [("Q1", 0.9)]  # scispaCy's linker sets it
    assert flu._.kb_ents == [("Q1", 0.9)] and flu._.kb_candidates[0][0] == "C5"


@pytest.mark.parametrize("scispacy_first", [True, False], ids=["scispacy-first", "sapel-first"])
def test_our_abbreviations_never_take_scispacys_name(extensions, toy_linker_kb, scispacy_first):
    if scispacy_first:
        register_scispacy_abbreviation_detector()
    nlp = linker_nlp(toy_linker_kb, top_k=3)
    assert Doc.has_extension("abbreviations") == scispacy_first
    if not scispacy_first:
        register_scispacy_abbreviation_detector()
    doc = nlp(doc_with_ents(nlp, "Head pain (HP) is common.", MENTIONS))
    assert [(s.text, lf.text) for s, lf in doc._.sapel_abbreviations] == [("HP", "Head pain")]
    assert doc._.abbreviations == []  # scispaCy's, left as it is


def scispacy_spans(doc: Doc):
    """What scispaCy's AbbreviationDetector leaves: the short-form Span with its long form."""
    short, long = doc[5:6], doc[0:2]
    short._.long_form = long
    return [short]


def scispacy_dicts(doc: Doc):
    """The same in its make_serializable mode."""
    return [{"short_text": "HP", "short_start": 5, "short_end": 6,
             "long_text": "Head pain", "long_start": 0, "long_end": 2}]


@pytest.mark.parametrize("detected", [scispacy_spans, scispacy_dicts], ids=["spans", "serializable"])
def test_scispacys_abbreviations_are_read(extensions, toy_linker_kb, detected):
    register_scispacy_abbreviation_detector()
    # an undefined "HP" would follow "Head pain" by itself (implicit_short_forms)
    nlp = linker_nlp(toy_linker_kb, top_k=3, implicit_short_forms=False)
    plain = nlp(doc_with_ents(nlp, TEXT, MENTIONS))
    # no parenthesis: the linker's own detector finds nothing, HP alone is no KB name
    assert plain._.sapel_abbreviations == []
    doc = doc_with_ents(nlp, TEXT, MENTIONS)
    doc._.abbreviations = detected(doc)
    doc = nlp(doc)
    assert [(s.text, lf.text) for s, lf in doc._.sapel_abbreviations] == [("HP", "Head pain")]
    hp = doc.ents[1]
    assert hp.kb_id_ == "C1" and hp._.kb_candidates[0][1] == pytest.approx(1.0, abs=1e-4)
    assert plain.ents[1]._.kb_candidates[0][1] < hp._.kb_candidates[0][1]


def test_other_values_under_scispacys_name_are_passed_over(extensions, toy_linker_kb):
    Doc.set_extension("abbreviations", default=None)
    nlp = linker_nlp(toy_linker_kb, top_k=3)
    doc = doc_with_ents(nlp, TEXT, MENTIONS)
    doc._.abbreviations = {"HP": "something else"}
    assert nlp(doc)._.sapel_abbreviations == []
