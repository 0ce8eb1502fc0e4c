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

from ..errors import Errors, SapelError
from ..kb.ids import concept_index
from ..pipeline.linker import CANDIDATES_ATTR
from .evaluate import first_hit
from .ner_eval import gold_mention_docs


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
    and just above the highest one, so the curve is exact). A mention without
    candidates has score -inf and is never linked."""
    scores = np.asarray(top_scores, dtype=np.float64)
    correct = np.asarray(top_correct, dtype=bool)
    in_kb = np.asarray(gold_in_kb, dtype=bool)
    if not (len(scores) == len(correct) == len(in_kb)):
        raise SapelError(
            Errors.E510.format(
                function="nil_curve", what="one top score, correctness and in-KB flag",
                lengths=f"{len(scores)}, {len(correct)} and {len(in_kb)}",
            )
        )
    if thresholds is None:
        finite = scores[np.isfinite(scores)]  # -inf: a mention without candidates
        above = float(np.nextafter(finite.max(), np.inf)) if len(finite) else 1.0
        thresholds = sorted({-1.0, *finite.tolist(), above})
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
        raise SapelError(Errors.E511)
    return max(points, key=lambda p: (round(p.f1, 12), -p.threshold))


@dataclass(frozen=True)
class LinkOutcomes:
    """What a linker did on gold mentions, one entry per mention."""

    top_scores: List[float]
    top_correct: List[bool]
    gold_in_kb: List[bool]

    def curve(self, thresholds: Optional[Sequence[float]] = None) -> List[ThresholdPoint]:
        return nil_curve(self.top_scores, self.top_correct, self.gold_in_kb, thresholds=thresholds)


def link_outcomes(nlp, gold_docs, linker_name: str) -> LinkOutcomes:
    """Run the linker ``linker_name`` of ``nlp`` on the gold mentions of ``gold_docs``
    (docs with entities whose ``kb_id_`` holds the gold ids; ``-1`` or no id = NIL) and
    record each mention's best score, whether that candidate is right, and whether any
    gold id is in the linker's KB. A mention with no candidate scores -inf."""
    linker = nlp.get_pipe(linker_name)
    docs, gold_sets = gold_mention_docs(nlp, gold_docs, labels=linker.labels, keep_nil=True)
    kb = linker.kb
    known = concept_index(kb)
    id_sets: dict = {}
    scores: List[float] = []
    correct: List[bool] = []
    in_kb: List[bool] = []
    gold_iter = iter(gold_sets)
    for doc in linker.pipe(docs):
        for ent in doc.ents:
            gold = next(gold_iter)
            cands = ent._.get(CANDIDATES_ATTR) or []
            scores.append(float(cands[0][1]) if cands else float("-inf"))
            correct.append(first_hit(cands[:1], gold, kb, id_sets) == 0)
            in_kb.append(any(i in known for i in gold))
    return LinkOutcomes(scores, correct, in_kb)
