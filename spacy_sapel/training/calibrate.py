"""Choosing the linker's NIL threshold from development data.

For each mention: the best candidate's score, whether that candidate is right, and
whether the gold concept is in the KB at all. A threshold links a mention when its best
score reaches it; mentions whose concept is absent should stay NIL. Precision, recall
and F1 are counted as spaCy's ``Scorer.score_links`` counts them (a wrong link is a
false positive and, when the gold concept exists, also a false negative)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from spacy.training import Example

from ..errors import Errors, SapelError
from ..kb.ids import concept_index
from ..pipeline.linker import CANDIDATES_ATTR
from .evaluate import first_hit
from .ner_eval import gold_mention_docs, joint_outcomes, ner_outcomes, pipeline_input, prf_from_counts


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
        raise SapelError(Errors.E511.format(function="best_threshold", curve="nil_curve"))
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


@dataclass(frozen=True)
class VetoPoint:
    """Scores of the whole pipeline with the linker's veto at ``threshold`` (``None``:
    veto off): NER span P/R/F overall and per type (as :func:`score_ner` counts), and
    joint NER + linking P/R/F on the linker's labels (as :func:`score_joint`)."""

    threshold: Optional[float]
    dropped: int
    dropped_right: int
    ner: Dict[str, float]
    per_type: Dict[str, Dict[str, float]]
    joint: Dict[str, float]
    #: label -> (right, predicted, gold), from which the scores come (to add up folds)
    ner_counts: Dict[str, Tuple[int, int, int]]
    joint_counts: Tuple[int, int, int]


@dataclass(frozen=True)
class VetoOutcomes:
    """What the pipeline predicted on development docs, with the veto off: for each
    entity the linker judges, its best link score (-inf without candidates), its label
    and whether NER and joint scoring count it and call it right (1 right, 0 wrong,
    -1 not counted); the counts of the entities it does not judge and of the gold
    mentions are fixed."""

    scores: np.ndarray
    labels: np.ndarray
    ner: np.ndarray
    joint: np.ndarray
    label_names: List[str]
    fixed_ner: Dict[str, Tuple[int, int, int]]  # label -> (right, predicted, gold)
    fixed_joint: Dict[str, Tuple[int, int, int]]

    def thresholds(self) -> List[Optional[float]]:
        """Off, then every distinct best score and just above the highest one (which
        drops every judged entity): the curve is exact at these. Only thresholds the
        linker accepts (-1 to 1) are listed; a float32 cosine a hair above 1 gives 1."""
        finite = np.clip(self.scores[np.isfinite(self.scores)], -1.0, 1.0)
        above = float(np.nextafter(finite.max(), np.inf)) if len(finite) else 1.0
        return [None, *sorted(t for t in {*finite.tolist(), above} if t <= 1.0)]

    def curve(self, thresholds: Optional[Sequence[Optional[float]]] = None) -> List[VetoPoint]:
        if thresholds is None:
            thresholds = self.thresholds()
        return [self._point(t) for t in thresholds]

    def _point(self, threshold: Optional[float]) -> VetoPoint:
        # the linker's rule: an entity stays when it has a candidate scoring >= threshold
        kept = np.ones(len(self.scores), dtype=bool) if threshold is None else self.scores >= threshold
        ner = _counts(self.fixed_ner, self.labels[kept], self.ner[kept], self.label_names)
        joint = _counts(self.fixed_joint, self.labels[kept], self.joint[kept], self.label_names)
        ner_counts = {label: tuple(c) for label, c in sorted(ner.items()) if c[1] or c[2]}
        joint_counts = _total(joint)
        return VetoPoint(
            threshold=threshold,
            dropped=int((~kept).sum()),
            dropped_right=int((~kept & (self.ner == 1)).sum()),
            ner=prf_from_counts(*_total(ner)),
            per_type={label: prf_from_counts(*c) for label, c in ner_counts.items()},
            joint=prf_from_counts(*joint_counts),
            ner_counts=ner_counts,  # type: ignore[arg-type]
            joint_counts=joint_counts,
        )


#: what :func:`best_veto` maximises: NER span F, or joint NER + linking F
VETO_OBJECTIVES = ("ner", "joint")


def best_veto(points: Sequence[VetoPoint], objective: str = "ner") -> VetoPoint:
    """The point with the best F of ``objective`` (``"ner"``: NER span F over all
    types; ``"joint"``: joint NER + linking F on the linker's labels); among equals
    the first (off, then the lowest threshold: the one that drops the fewest
    entities)."""
    if objective not in VETO_OBJECTIVES:
        raise SapelError(Errors.E506.format(option="veto objective", value=objective, options=", ".join(VETO_OBJECTIVES)))
    if not points:
        raise SapelError(Errors.E511.format(function="best_veto", curve="VetoOutcomes.curve"))
    return max(points, key=lambda p: round(getattr(p, objective)["f"], 12))  # max keeps the first of equals


def veto_outcomes(nlp, gold_docs, linker_name: str) -> VetoOutcomes:
    """Run the whole pipeline on the texts of ``gold_docs`` with the veto of
    ``linker_name`` off and record what :meth:`VetoOutcomes.curve` needs to score
    every threshold without running it again (dropping an entity changes nothing
    else: the veto acts after all entities of a doc are linked)."""
    linker = nlp.get_pipe(linker_name)
    judged_labels = set(linker.labels)
    joint_labels = judged_labels or None
    saved = linker.cfg["veto_threshold"]
    linker.cfg["veto_threshold"] = None
    try:
        preds = list(nlp.pipe(pipeline_input(nlp, gold) for gold in gold_docs))
    finally:
        linker.cfg["veto_threshold"] = saved
    label_ids: Dict[str, int] = {}
    scores: List[float] = []
    labels: List[int] = []
    ner: List[int] = []
    joint: List[int] = []
    fixed_ner: Dict[str, List[int]] = {}
    fixed_joint: Dict[str, List[int]] = {}
    for pred, gold in zip(preds, gold_docs):
        for ent in gold.ents:
            fixed_ner.setdefault(ent.label_, [0, 0, 0])[2] += 1
        n_gold, joint_flags = joint_outcomes(pred, gold, labels=joint_labels)
        for label, n in n_gold.items():
            fixed_joint.setdefault(label, [0, 0, 0])[2] += n
        ner_flags = ner_outcomes(Example(pred, gold))
        for ent, ner_right, joint_right in zip(pred.ents, ner_flags, joint_flags):
            if not judged_labels or ent.label_ in judged_labels:
                cands = ent._.get(CANDIDATES_ATTR) or []
                scores.append(float(cands[0][1]) if cands else float("-inf"))
                labels.append(label_ids.setdefault(ent.label_, len(label_ids)))
                ner.append(-1 if ner_right is None else int(ner_right))
                joint.append(-1 if joint_right is None else int(joint_right))
                continue
            for fixed, right in ((fixed_ner, ner_right), (fixed_joint, joint_right)):
                if right is not None:
                    row = fixed.setdefault(ent.label_, [0, 0, 0])
                    row[0] += right
                    row[1] += 1
    return VetoOutcomes(
        scores=np.asarray(scores, dtype=np.float64),
        labels=np.asarray(labels, dtype=np.int64),
        ner=np.asarray(ner, dtype=np.int8),
        joint=np.asarray(joint, dtype=np.int8),
        label_names=list(label_ids),
        fixed_ner={k: tuple(v) for k, v in fixed_ner.items()},
        fixed_joint={k: tuple(v) for k, v in fixed_joint.items()},
    )


def _counts(fixed, labels, flags, label_names) -> Dict[str, List[int]]:
    """``fixed`` (label -> right, predicted, gold) plus the kept judged entities."""
    out = {label: list(c) for label, c in fixed.items()}
    for i, label in enumerate(label_names):
        mine = flags[labels == i]
        row = out.setdefault(label, [0, 0, 0])
        row[0] += int((mine == 1).sum())
        row[1] += int((mine >= 0).sum())
    return out


def _total(counts: Dict[str, List[int]]) -> Tuple[int, int, int]:
    return tuple(sum(c[i] for c in counts.values()) for i in range(3))  # type: ignore[return-value]
