"""Batch orders of SAP training: the hard order is a seeded permutation whose batches
gather neighbouring concepts; the neighbour graph comes from the encoder."""
from __future__ import annotations

import numpy as np
import pytest

from spacy_sapel.sap.batching import hard_order, label_neighbors, neighbour_chain
from spacy_sapel.sap.pairs import SynonymPair
from spacy_sapel.sap.trainer import SapConfig


class PointEncoder:
    """Embeds a text at the point its first word names: "3 x" -> angle 3."""

    def encode(self, texts, batch_size=None):
        angles = np.array([float(t.split()[0]) for t in texts]) / 10
        return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def line_pairs(n_labels: int, per_label: int):
    """Labels L0..Ln-1 at angles 0..n-1 (tenths of a radian) in a shuffled order."""
    rng = np.random.default_rng(0)
    pairs = []
    for label in rng.permutation(n_labels):
        for j in range(per_label):
            pairs.append(SynonymPair(f"L{label}", f"{label} a{j}", f"{label} b{j}"))
    return pairs


def test_label_neighbors_are_the_nearest_labels_best_first():
    pairs = line_pairs(10, 2)
    labels = list(dict.fromkeys(p.label for p in pairs))
    neighbors = label_neighbors(PointEncoder(), pairs, labels, k=2)
    assert neighbors.shape == (10, 2)
    for row, label in enumerate(labels):
        position = int(label[1:])
        found = [int(labels[j][1:]) for j in neighbors[row]]
        assert position not in found
        assert sorted(found) == sorted(sorted(set(range(10)) - {position}, key=lambda p: abs(p - position))[:2])
        assert abs(found[0] - position) == 1
    # k larger than the number of other labels: every other label, once
    assert label_neighbors(PointEncoder(), pairs[:6], labels[:3], k=16).shape == (3, 2)


def test_neighbour_chain_visits_each_label_once_and_follows_neighbours():
    n = 50
    neighbors = np.array([[max(i - 1, 0), min(i + 1, n - 1)] for i in range(n)])
    chain = neighbour_chain(neighbors, np.random.default_rng(3))
    assert sorted(chain) == list(range(n))
    position = {label: i for i, label in enumerate(chain)}
    for i, (a, b) in enumerate(zip(chain, chain[1:])):
        if b not in neighbors[a]:
            # a jump only when every neighbour of a was already visited
            assert all(position[j] <= i for j in neighbors[a])
    assert sum(abs(a - b) == 1 for a, b in zip(chain, chain[1:])) >= n // 2
    assert chain == neighbour_chain(neighbors, np.random.default_rng(3))


def test_hard_order_is_a_seeded_permutation_of_neighbouring_batches():
    n_labels, per_label, batch_size = 40, 20, 32
    pairs = line_pairs(n_labels, per_label)
    labels = list(dict.fromkeys(p.label for p in pairs))
    row = {label: i for i, label in enumerate(labels)}
    pair_labels = np.array([row[p.label] for p in pairs])
    neighbors = label_neighbors(PointEncoder(), pairs, labels, k=4)
    order = hard_order(pair_labels, neighbors, batch_size=batch_size, concepts_per_batch=8,
                       rng=np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(len(pairs)))
    again = hard_order(pair_labels, neighbors, batch_size=batch_size, concepts_per_batch=8,
                       rng=np.random.default_rng(1))
    assert np.array_equal(order, again)
    other = hard_order(pair_labels, neighbors, batch_size=batch_size, concepts_per_batch=8,
                       rng=np.random.default_rng(2))
    assert not np.array_equal(order, other)

    def spread(order) -> float:
        """Mean distance between the labels that share a batch."""
        out = []
        for first in range(0, len(order), batch_size):
            positions = np.array([int(pairs[i].label[1:]) for i in order[first:first + batch_size]])
            out.append(np.abs(positions[:, None] - positions[None, :]).mean())
        return float(np.mean(out))

    random_order = np.random.default_rng(1).permutation(len(pairs))
    assert spread(order) < 0.5 * spread(random_order)
    # each batch holds several concepts (negatives to mine), none fills a batch alone
    for first in range(0, len(order) - batch_size + 1, batch_size):
        counts = np.bincount(pair_labels[order[first:first + batch_size]])
        assert (counts > 0).sum() >= 4 and counts.max() <= batch_size // 8


@pytest.mark.parametrize("field,value", [("batching", "clustered"), ("concepts_per_batch", 0), ("n_neighbors", 1.5)])
def test_bad_batching_options(field, value):
    with pytest.raises(ValueError, match=field):
        SapConfig(**{field: value}).check()
