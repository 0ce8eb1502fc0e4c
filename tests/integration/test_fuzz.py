"""Property-based robustness of the linker in a full pipeline: any text, any entity
layout -> no exception, well-formed output, the same result every time."""
from __future__ import annotations

import pytest
from sapel_test_utils import linker_nlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.util import has_visible_text

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LABELS = ["DISEASE", "CHEMICAL", "OTHER"]


@pytest.fixture(scope="module")
def nlp(tiny_bert_dir):
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")
    kb = KnowledgeBase.from_concepts(
        [Concept("C1", "headache", aliases=["head pain"]), Concept("C2", "influenza", aliases=["flu"]),
         Concept("C3", "asthma"), Concept("C4", "heart attack")]
    )
    linker_kb = LinkerKB.build(kb, encoder)
    nlp = linker_nlp(linker_kb, **{"top_k": 3, "threshold": 0.2, "labels": ["DISEASE", "CHEMICAL"]})
    return nlp


def with_random_ents(nlp, text: str, data) -> Doc:
    """Entities as another component might set them: random, overlapping spans,
    resolved to a valid set with spaCy's filter_spans."""
    doc = nlp.make_doc(text)
    n = len(doc)
    if n:
        spans = []
        for _ in range(data.draw(st.integers(0, min(n, 30)))):
            start = data.draw(st.integers(0, n - 1))
            end = data.draw(st.integers(start + 1, min(n, start + 8)))
            spans.append(Span(doc, start, end, label=data.draw(st.sampled_from(LABELS))))
        doc.ents = filter_spans(spans)
    return doc


def check_well_formed(doc: Doc, kb_ids) -> None:
    for ent in doc.ents:
        cands = ent._.kb_candidates
        if ent.label_ == "OTHER":
            assert cands is None and ent.kb_id_ == ""
            continue
        if not has_visible_text(ent.text):  # nothing to link: NIL, no candidates
            assert cands == [] and ent.kb_id_ == ""
            continue
        assert isinstance(cands, list) and 1 <= len(cands) <= 3
        ids = [cid for cid, _ in cands]
        assert len(set(ids)) == len(ids) and set(ids) <= kb_ids
        scores = [s for _, s in cands]
        assert all(-1.0001 <= s <= 1.0001 for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert ent.kb_id_ in ("", ids[0])
        assert (ent.kb_id_ == ids[0]) == (scores[0] >= 0.2)


@FUZZ
@given(text=st.text(max_size=300), data=st.data())
def test_any_unicode_text_and_entity_layout(nlp, text, data):
    doc = nlp(with_random_ents(nlp, text, data))
    check_well_formed(doc, set(nlp.get_pipe("sapel_linker").kb.concept_ids))


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(" \t\n\r\u00a0\u2003\u200b"), max_size=50))
def test_whitespace_only_text(nlp, text):
    doc = nlp.make_doc(text)
    if len(doc):
        doc.ents = [Span(doc, 0, len(doc), label="DISEASE")]
    check_well_formed(nlp(doc), set(nlp.get_pipe("sapel_linker").kb.concept_ids))


@FUZZ
@given(data=st.data())
def test_same_input_same_output_single_and_batched(nlp, data):
    texts = data.draw(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=6))
    docs = [with_random_ents(nlp, t, data) for t in texts]
    # the same docs again: identical entity layout
    copies = [Doc(d.vocab).from_bytes(d.to_bytes()) for d in docs]

    def result(ds):
        return [[(e.start_char, e.end_char, e.kb_id_, [c for c, _ in e._.kb_candidates or []]) for e in d.ents] for d in ds]

    single = result([nlp(d) for d in docs])
    batched = result(list(nlp.pipe(copies, batch_size=3)))
    assert single == batched


def test_an_extremely_long_document_with_many_entities(nlp):
    words = ["flu", "and", "head", "pain", "with", "asthma", ","] * 3000
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, i, i + 1, label="DISEASE") for i in range(0, len(words), 7)]
    doc = nlp(doc)
    assert len(doc.ents) == 3000
    assert {ent.kb_id_ for ent in doc.ents} == {"C2"}
    check_well_formed(doc, set(nlp.get_pipe("sapel_linker").kb.concept_ids))


def test_overlapping_spans_in_span_groups_are_left_alone(nlp):
    doc = nlp.make_doc("severe head pain and flu")
    doc.spans["sc"] = [Span(doc, 0, 3, label="DISEASE"), Span(doc, 1, 3, label="DISEASE")]
    doc.ents = [Span(doc, 1, 3, label="DISEASE")]
    doc = nlp(doc)
    assert [e.kb_id_ for e in doc.ents] == ["C1"]
    assert len(doc.spans["sc"]) == 2
