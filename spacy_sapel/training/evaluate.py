"""Linking accuracy at k, the measure SapBERT, BioSyn and NeMo's tutorial report."""
from __future__ import annotations

from typing import Dict, FrozenSet, List, Sequence, Tuple

from ..kb import KnowledgeBase
from .pubtator import normalize_id


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
        raise ValueError(f"{len(candidates)} candidate lists for {len(gold)} gold sets")
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


def accuracy_table(rows: List[Tuple[str, Dict[int, float]]], ks: Sequence[int] = (1, 5)) -> List[Tuple]:
    """Rows for a wasabi table: name, acc@k..."""
    return [(name, *(f"{acc[k]:.3f}" for k in ks)) for name, acc in rows]
