"""Choosing the linker's NIL threshold from development data.

For each mention: the best candidate's score, whether that candidate is right, and
whether the gold concept is in the KB at all. A threshold links a mention when its best
score reaches it; mentions whose concept is absent should stay NIL. Precision, recall
and F1 are counted as spaCy's ``Scorer.score_links`` counts them (a wrong link is a
false positive and, when the gold concept exists, also a false negative)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    precision: float
    recall: float
    f1: float
    linked: int
    nil_correct: int


def nil_curve(
    top_scores: Sequence[float],
    top_correct: Sequence[bool],
    gold_in_kb: Sequence[bool],
    *,
    thresholds: Optional[Sequence[float]] = None,
) -> List[ThresholdPoint]:
    """P/R/F1 of linking at each threshold (by default -1, every distinct top score,
    and just above the highest one, so the curve is exact)."""
    scores = np.asarray(top_scores, dtype=np.float64)
    correct = np.asarray(top_correct, dtype=bool)
    in_kb = np.asarray(gold_in_kb, dtype=bool)
    if not (len(scores) == len(correct) == len(in_kb)):
        raise ValueError(
            f"nil_curve needs one score, correctness and in-KB flag per mention; got "
            f"{len(scores)}, {len(correct)} and {len(in_kb)}"
        )
    if thresholds is None:
        above = float(np.nextafter(scores.max(), np.inf)) if len(scores) else 1.0
        thresholds = sorted({-1.0, *scores.tolist(), above})
    n_gold = int(in_kb.sum())
    points = []
    for t in thresholds:
        linked = scores >= t
        tp = int((linked & correct).sum())
        n_linked = int(linked.sum())
        precision = tp / n_linked if n_linked else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        nil_correct = int((~linked & ~in_kb).sum())
        points.append(ThresholdPoint(float(t), precision, recall, f1, n_linked, nil_correct))
    return points


def best_threshold(points: Sequence[ThresholdPoint]) -> ThresholdPoint:
    """The point with the highest F1; among equals, the lowest threshold."""
    if not points:
        raise ValueError("best_threshold needs at least one point of the curve")
    return max(points, key=lambda p: (round(p.f1, 12), -p.threshold))
