"""The exact torch searcher behind the torch-gpu backend, run on CPU tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spacy_sapel.index import backends
from spacy_sapel.index.backends import FaissSearcher, TorchSearcher


@pytest.mark.parametrize("name", ["flat", "ivf", "hnsw", "flat+pca", "ivf+pca", "hnsw+pca"])
def test_torch_search_equals_exact_faiss_search(build_index, queries, name):
    """ivf and hnsw store the vectors exactly, so searching all of them with torch
    gives the flat (with PCA: the flat+pca) answer."""
    searcher = TorchSearcher.from_faiss(build_index(name).faiss_index, device="cpu")
    exact = build_index("flat+pca" if "pca" in name else "flat").faiss_index
    scores, rows = searcher.search(queries, 10)
    expected_scores, expected_rows = FaissSearcher(exact).search(queries, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert scores.dtype == np.float32 and rows.dtype == np.int64


def test_torch_search_over_pq_codes(build_index, vectors):
    """ivfpq: torch scores every PQ-decoded vector, so a stored vector is found among
    its nearest decoded neighbours."""
    index = build_index("ivfpq").faiss_index
    searcher = TorchSearcher.from_faiss(index, device="cpu")
    assert searcher.vectors.shape == (index.ntotal, index.d)
    _, rows = searcher.search(vectors[:100], 10)
    assert (rows == np.arange(100)[:, None]).any(axis=1).mean() >= 0.99


def test_torch_search_in_chunks(monkeypatch, build_index, queries):
    """Reconstruction and scoring in small blocks give the same result."""
    index = build_index("ivf").faiss_index
    expected = TorchSearcher.from_faiss(index, device="cpu").search(queries, 5)
    monkeypatch.setattr(backends, "_RECONSTRUCT_ROWS", 128)
    monkeypatch.setattr(backends, "_SCORE_BLOCK", 4000)  # two queries per block
    scores, rows = TorchSearcher.from_faiss(index, device=torch.device("cpu")).search(
        queries, 5
    )
    np.testing.assert_array_equal(rows, expected[1])
    np.testing.assert_allclose(scores, expected[0], atol=1e-6)  # BLAS blocks round apart


def test_torch_searcher_from_a_tensor():
    vectors = torch.eye(4)
    scores, rows = TorchSearcher(vectors).search(np.eye(4, dtype=np.float32)[[2, 0]], 2)
    np.testing.assert_array_equal(rows[:, 0], [2, 0])
    np.testing.assert_array_equal(scores[:, 0], [1.0, 1.0])
