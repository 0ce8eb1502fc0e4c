import numpy as np
import pytest

from spacy_sapel.errors import SapelError
from spacy_sapel.training.calibrate import VetoOutcomes, best_threshold, best_veto, nil_curve


def test_curve_counts_like_score_links():
    # scores, top-1 right?, gold concept in KB?
    scores = [0.95, 0.9, 0.6, 0.5, 0.4]
    correct = [True, True, False, False, True]
    in_kb = [True, True, True, False, True]
    points = {p.threshold: p for p in nil_curve(scores, correct, in_kb)}
    low = points[-1.0]  # link everything: 3 right of 5 linked, 4 in KB
    assert (low.precision, low.recall, low.linked) == (pytest.approx(0.6), pytest.approx(0.75), 5)
    mid = points[0.9]  # link the two best only
    assert (mid.precision, mid.recall, mid.nil_correct) == (1.0, 0.5, 1)
    best = best_threshold(list(points.values()))
    assert best.f1 == pytest.approx(max(p.f1 for p in points.values()))
    assert best.threshold == -1.0  # ties with 0.9 (F1 2/3): the lowest threshold wins


def test_all_nil_mentions_reward_a_high_threshold():
    points = nil_curve([0.3, 0.2], [False, False], [False, False])
    assert all(p.f1 == 0.0 for p in points)
    assert max(p.nil_correct for p in points) == 2


def test_ties_prefer_the_lowest_threshold():
    points = nil_curve([0.9, 0.8], [True, True], [True, True])
    assert best_threshold(points).threshold == -1.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(SapelError, match=r"E510.*nil_curve.*one top score.*lengths 1, 2 and 1"):
        nil_curve([0.1], [True, False], [True])
    with pytest.raises(SapelError, match="E511.*best_threshold.*nil_curve"):
        best_threshold([])
    with pytest.raises(SapelError, match="E511.*best_veto.*VetoOutcomes.curve"):
        best_veto([])


def test_best_veto_maximises_the_objective_asked_for():
    # two gold D mentions; three judged predictions: right span and link (0.9), right
    # span with a wrong link (0.5), not an entity (0.3)
    outcomes = VetoOutcomes(
        scores=np.array([0.9, 0.5, 0.3]), labels=np.zeros(3, dtype=np.int64),
        ner=np.array([1, 1, 0], dtype=np.int8), joint=np.array([1, 0, 0], dtype=np.int8),
        label_names=["D"], fixed_ner={"D": (0, 0, 2)}, fixed_joint={"D": (0, 0, 2)},
    )
    points = outcomes.curve()
    off = points[0]
    assert off.ner["f"] == pytest.approx(0.8) and off.joint["f"] == pytest.approx(0.4)
    by_ner, by_joint = best_veto(points), best_veto(points, "joint")
    # dropping the non-entity is best for NER F; also dropping the wrong link, for joint F
    assert by_ner.threshold == 0.5 and by_ner.ner["f"] == pytest.approx(1.0)
    assert by_joint.threshold == 0.9 and by_joint.joint["f"] == pytest.approx(2 / 3)
    assert by_joint.joint["f"] > by_ner.joint["f"] and by_ner.ner["f"] > by_joint.ner["f"]
    with pytest.raises(SapelError, match="E506.*veto objective 'linking'.*ner, joint"):
        best_veto(points, "linking")
