"""Linking accuracy at k, the measure SapBERT, BioSyn and NeMo's tutorial report."""
from __future__ import annotations

from typing import Dict, FrozenSet, Optional, Sequence, Tuple

from ..errors import Errors, SapelError
from ..kb import KnowledgeBase
from ..kb.ids import normalize_id


def accuracy_at_k(
    candidates: Sequence[Sequence[Tuple[str, float]]],
    gold: Sequence[FrozenSet[str]],
    kb: KnowledgeBase,
    *,
    ks: Sequence[int] = (1, 5),
) -> Dict[int, float]:
    """A mention is correct at k when any of its top-k distinct concepts has an id
    (primary or alternate, normalised) in the mention's gold id set."""
    if len(candidates) != len(gold):
        raise SapelError(
            Errors.E510.format(
                function="accuracy_at_k", what="one candidate list and one gold id set",
                lengths=f"{len(candidates)} and {len(gold)}",
            )
        )
    hits = {k: 0 for k in ks}
    id_sets: Dict[str, FrozenSet[str]] = {}
    for cands, gold_ids in zip(candidates, gold):
        rank = first_hit(cands, gold_ids, kb, id_sets)
        for k in ks:
            hits[k] += rank is not None and rank < k
    n = max(len(gold), 1)
    return {k: hits[k] / n for k in ks}


def first_hit(cands, gold_ids, kb, id_sets) -> "int | None":
    """The rank of the first candidate with an id (primary or alternate, normalised)
    in ``gold_ids``, or None; ``id_sets`` caches each concept's id set."""
    for rank, (concept_id, _) in enumerate(cands):
        ids = id_sets.get(concept_id)
        if ids is None:
            ids = frozenset(normalize_id(i) for i in kb.id_set(concept_id))
            id_sets[concept_id] = ids
        if ids & gold_ids:
            return rank
    return None


def error_breakdown(
    candidates: Sequence[Sequence[Tuple[str, float]]],
    gold: Sequence[FrozenSet[str]],
    kb: KnowledgeBase,
    *,
    short_forms: Optional[Sequence[bool]] = None,
    k: int = 5,
    tie_tolerance: float = 1e-5,
) -> Dict[str, int]:
    """Counts of the mentions wrong at 1, by kind: ``tie`` (the first two candidates
    have the same score: several concepts match equally), ``short_form`` (a short form
    defined in its document), ``in_top_k`` (the right concept is ranked 2..k) and
    ``not_in_top_k``. ``tie`` and ``short_form`` overlap the last two."""
    counts = {"errors": 0, "tie": 0, "short_form": 0, "in_top_k": 0, "not_in_top_k": 0}
    id_sets: Dict[str, FrozenSet[str]] = {}
    for i, (cands, gold_ids) in enumerate(zip(candidates, gold)):
        rank = first_hit(cands, gold_ids, kb, id_sets)
        if rank == 0:
            continue
        counts["errors"] += 1
        counts["in_top_k" if rank is not None and rank < k else "not_in_top_k"] += 1
        if len(cands) > 1 and cands[0][1] - cands[1][1] <= tie_tolerance:
            counts["tie"] += 1
        if short_forms is not None and short_forms[i]:
            counts["short_form"] += 1
    return counts

