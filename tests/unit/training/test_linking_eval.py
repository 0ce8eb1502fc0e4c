"""evaluate_encoder: the exact-search accuracy that evaluate-linking and the
benchmarks report, with the names embedded by the encoder or given as vectors."""
from __future__ import annotations

import pytest

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.errors import SapelError
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.training.linking_eval import evaluate_encoder

CONCEPTS = [
    Concept("C1", "headache", aliases=["head ache"]),
    Concept("C2", "influenza", aliases=["flu"]),
    Concept("C3", "asthma"),
]
QUERIES = [("headache", frozenset({"C1"})), ("flu", frozenset({"C2"})), ("asthma", frozenset({"C1"}))]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> SapEncoder:
    return SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")


def test_exact_names_are_found_and_a_wrong_gold_counts_as_an_error(encoder):
    kb = KnowledgeBase.from_concepts(CONCEPTS, name="toy")
    acc, errors = evaluate_encoder(kb, encoder, QUERIES, ks=(1, 3))
    assert acc == {1: pytest.approx(2 / 3), 3: 1.0}
    assert errors["errors"] == 1 and errors["in_top_k"] == 1


def test_given_vectors_are_used_instead_of_the_encoder(encoder):
    """Vectors computed once for several KBs give the encoder's own result; other
    vectors change it, so they are really what is searched."""
    kb = KnowledgeBase.from_concepts(CONCEPTS, name="toy")
    own = evaluate_encoder(kb, encoder, QUERIES)
    assert evaluate_encoder(kb, encoder, QUERIES, embed=encoder.encode) == own
    # C1's names embedded as "flu", C2's as "headache": those two queries now miss
    swapped = {"C1": "flu", "C2": "headache", "C3": "asthma"}
    rows = [swapped[kb.concept_id_at(c)] for c in kb.alias_concepts()]
    vectors = encoder.encode(rows)
    acc, _ = evaluate_encoder(kb, encoder, QUERIES, embed=lambda _: vectors)
    assert acc[1] == 0.0 and own[0][1] == pytest.approx(2 / 3)
    with pytest.raises(SapelError, match="E364"):
        evaluate_encoder(kb, encoder, QUERIES, embed=lambda _: vectors[:1])
