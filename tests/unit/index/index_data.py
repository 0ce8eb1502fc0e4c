"""Test data for the index tests: clustered random unit vectors, the index
configurations under test, and a numpy brute-force search to compare with."""
from __future__ import annotations

from typing import Dict

import numpy as np

DIM = 32
COUNT = 2000
FINGERPRINT = "test-encoder-fingerprint"

#: Every index type, and each combined with a PCA. ivfpq uses 6-bit codes: 64 centroids
#: per sub-quantizer train quickly on 2000 rows.
CONFIGS: Dict[str, dict] = {
    "flat": {"index_type": "flat"},
    "ivf": {"index_type": "ivf"},
    "hnsw": {"index_type": "hnsw"},
    "ivfpq": {"index_type": "ivfpq", "pq_m": 16, "pq_nbits": 6},
    "flat+pca": {"index_type": "flat", "pca_dim": 16},
    "ivf+pca": {"index_type": "ivf", "pca_dim": 16},
    "hnsw+pca": {"index_type": "hnsw", "pca_dim": 16},
    "ivfpq+pca": {"index_type": "ivfpq", "pca_dim": 16, "pq_m": 16, "pq_nbits": 6},
}


def unit_vectors(
    count: int, dim: int = DIM, *, clusters: int = 25, noise: float = 0.35, seed: int = 0
) -> np.ndarray:
    """``count`` L2-normalised float32 rows scattered around ``clusters`` centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, count)] + noise * rng.standard_normal((count, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int):
    """Exact top-k by inner product with numpy: (scores, rows)."""
    scores = queries @ vectors.T
    rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, rows, axis=1), rows
