"""The order in which SAP training visits its pairs.

``random``: a seeded permutation per epoch, as SapBERT trains.

``hard``: confusable concepts share a batch. The multi-similarity loss only learns from
the negatives inside a batch, and with ~10k concepts a random batch of 64 pairs almost
never holds two concepts the encoder confuses ("Wilson disease" / "Wilson-Turner
syndrome"); on a CPU budget of a fraction of an epoch those batches teach little. Before
training, each concept is embedded with the base encoder (mean of its first pair's two
names) and linked to its nearest concepts; every epoch walks a seeded greedy chain through
that neighbour graph, so consecutive concepts are confusable, and cuts each concept's
pairs into chunks of ``batch_size // concepts_per_batch``. Round r of the order holds
chunk r of every concept still having pairs, in chain order, so a batch holds about
``concepts_per_batch`` neighbouring concepts. The graph is computed once (from the
encoder before training) and saved in the checkpoint, so ``--resume`` sees the same
orders.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

from ..encoder.sap_encoder import SapEncoder
from .pairs import SynonymPair

BATCHING = ("random", "hard")


def label_neighbors(
    encoder: SapEncoder,
    pairs: Sequence[SynonymPair],
    labels: Sequence[str],
    *,
    k: int = 16,
    batch_size: int = 256,
) -> np.ndarray:
    """``(len(labels), min(k, len(labels) - 1))`` int64 array: for each label, the
    indices of the labels whose embedding is most similar to its own, best first."""
    row_of = {label: i for i, label in enumerate(labels)}
    texts: List[List[str]] = [[] for _ in labels]
    for pair in pairs:
        row = row_of[pair.label]
        if not texts[row]:
            texts[row] = list(dict.fromkeys((pair.left, pair.right)))
    flat = [t for group in texts for t in group]
    vectors = encoder.encode(flat, batch_size=batch_size)
    dim = vectors.shape[1]
    centroids = np.zeros((len(labels), dim), dtype=np.float32)
    start = 0
    for row, group in enumerate(texts):
        centroids[row] = vectors[start : start + len(group)].mean(axis=0)
        start += len(group)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids /= np.maximum(norms, 1e-12)
    k = max(0, min(k, len(labels) - 1))
    out = np.empty((len(labels), k), dtype=np.int64)
    if k == 0:
        return out
    block = 2048
    for first in range(0, len(labels), block):
        sims = centroids[first : first + block] @ centroids.T
        rows = np.arange(sims.shape[0])
        sims[rows, first + rows] = -np.inf  # never a neighbour of itself
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[first : first + block] = np.take_along_axis(top, order, axis=1)
    return out


def neighbour_chain(neighbors: np.ndarray, rng: np.random.Generator) -> List[int]:
    """Every label once: from a random start, step to the nearest unvisited neighbour;
    when there is none, jump to the next unvisited label of a random permutation."""
    n = neighbors.shape[0]
    visited = np.zeros(n, dtype=bool)
    starts = rng.permutation(n)
    chain: List[int] = []
    next_start = 0
    current = -1
    while len(chain) < n:
        if current < 0:
            while visited[starts[next_start]]:
                next_start += 1
            current = int(starts[next_start])
        visited[current] = True
        chain.append(current)
        following = -1
        for candidate in neighbors[current]:
            if not visited[candidate]:
                following = int(candidate)
                break
        current = following
    return chain


def hard_order(
    pair_labels: np.ndarray,
    neighbors: np.ndarray,
    *,
    batch_size: int,
    concepts_per_batch: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A permutation of the pair indices in which each batch of ``batch_size`` holds
    pairs of about ``concepts_per_batch`` neighbouring labels."""
    chunk = max(1, batch_size // max(1, concepts_per_batch))
    members: List[List[int]] = [[] for _ in range(neighbors.shape[0])]
    for index, label in enumerate(pair_labels.tolist()):
        members[label].append(index)
    for group in members:
        rng.shuffle(group)
    chain = neighbour_chain(neighbors, rng)
    rounds = math.ceil(max((len(g) for g in members), default=0) / chunk)
    order: List[int] = []
    for r in range(rounds):
        for label in chain:
            order.extend(members[label][r * chunk : (r + 1) * chunk])
    return np.asarray(order, dtype=np.int64)
