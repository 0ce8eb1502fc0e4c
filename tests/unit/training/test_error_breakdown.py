"""error_breakdown: the kinds of linking errors that evaluate-linking and
benchmarks/quality.py print; accuracy_at_k's input check."""
from __future__ import annotations

import pytest

from spacy_sapel.errors import SapelError
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.training.evaluate import accuracy_at_k, error_breakdown


def test_error_kinds():
    kb = KnowledgeBase.from_concepts(
        [Concept("D1", "a"), Concept("D2", "b", alt_ids=["OMIM:9"]), Concept("D3", "c")]
    )
    candidates = [
        [("D1", 0.9), ("D2", 0.5)],  # right
        [("D1", 1.0), ("D2", 1.0)],  # a tie decided wrongly, right concept second
        [("D3", 0.8), ("D1", 0.7)],  # right concept not in the list
        [("D1", 0.8), ("D3", 0.7), ("D2", 0.1)],  # right (alt id) third, a short form
    ]
    gold = [frozenset({"D1"}), frozenset({"D2"}), frozenset({"D2"}), frozenset({"OMIM:9"})]
    counts = error_breakdown(candidates, gold, kb, short_forms=[False, False, True, True], k=5)
    assert counts == {"errors": 3, "tie": 1, "short_form": 2, "in_top_k": 2, "not_in_top_k": 1}
    assert error_breakdown(candidates, gold, kb, k=2)["not_in_top_k"] == 2


def test_accuracy_needs_one_candidate_list_per_gold_mention():
    kb = KnowledgeBase.from_concepts([Concept("D1", "a")])
    assert accuracy_at_k([[("D1", 0.9)]], [frozenset({"D1"})], kb, ks=(1,)) == {1: 1.0}
    with pytest.raises(SapelError, match=r"E510.*accuracy_at_k.*lengths 1 and 2"):
        accuracy_at_k([[("D1", 0.9)]], [frozenset({"D1"}), frozenset({"D1"})], kb)
