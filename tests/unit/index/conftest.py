"""Fixtures shared by the index tests: the data and built indexes (built once)."""
from __future__ import annotations

from typing import Callable, Dict, Iterator

import faiss
import numpy as np
import pytest

from spacy_sapel.index import DenseIndex

from index_data import CONFIGS, COUNT, FINGERPRINT, unit_vectors


@pytest.fixture(scope="module", autouse=True)
def single_faiss_thread() -> Iterator[None]:
    """Tiny indexes build 10-20x faster on one thread than with OpenMP threads fighting
    over a shared, busy CPU."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="session")
def vectors() -> np.ndarray:
    return unit_vectors(COUNT)


@pytest.fixture(scope="session")
def queries() -> np.ndarray:
    """Noisy copies of stored vectors (not identical to any of them)."""
    base = unit_vectors(COUNT)[::20]
    noisy = base + 0.1 * np.random.default_rng(1).standard_normal(base.shape)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def build_index(vectors) -> Callable[[str], DenseIndex]:
    """Build (once per session) the index of a CONFIGS entry over ``vectors``, on the
    CPU. Tests must not modify the returned index."""
    cache: Dict[str, DenseIndex] = {}

    def build(name: str) -> DenseIndex:
        if name not in cache:
            index = DenseIndex(**CONFIGS[name], device="cpu")
            index.build(vectors, fingerprint=FINGERPRINT)
            cache[name] = index
        return cache[name]

    return build
