"""DenseIndex build and search: exactness, recall, PCA, options and bad inputs."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from spacy_sapel.index import INDEX_TYPES, DenseIndex, auto_nlist
from spacy_sapel.index import dense_index as dense_index_module

from index_data import CONFIGS, COUNT, DIM, FINGERPRINT, brute_force, unit_vectors

#: Share of stored vectors that must come back first when searched for themselves.
#: Product quantisation is lossy, so ivfpq may rank a near-duplicate first.
TOP1_AT_LEAST = {name: (0.95 if "ivfpq" in name else 1.0) for name in CONFIGS}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stored_vector_is_its_own_nearest_neighbour(build_index, vectors, name):
    index = build_index(name)
    probe = vectors[::7]
    expected = np.arange(0, COUNT, 7)
    scores, rows = index.search(probe, 10)
    assert (rows[:, 0] == expected).mean() >= TOP1_AT_LEAST[name]
    assert (rows == expected[:, None]).any(axis=1).mean() >= 0.99
    assert scores.dtype == np.float32 and rows.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted best first"


def test_flat_equals_brute_force(build_index, vectors, queries):
    scores, rows = build_index("flat").search(queries, 10)
    expected_scores, expected_rows = brute_force(vectors, queries, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


@pytest.mark.parametrize("name,bar", [("ivf", 0.95), ("hnsw", 0.95), ("ivfpq", 0.6)])
def test_recall_against_flat(build_index, queries, name, bar):
    _, truth = build_index("flat").search(queries, 10)
    _, rows = build_index(name).search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth)])
    assert recall >= bar


@pytest.mark.parametrize("name", [n for n in CONFIGS if "pca" in n])
def test_pca_keeps_scores_cosine(build_index, vectors, name):
    index = build_index(name)
    scores, rows = index.search(vectors[:100], 5)
    # PQ-decoded vectors are only roughly unit length
    eps = 0.05 if "ivfpq" in name else 1e-5
    assert scores.max() <= 1 + eps
    assert scores.min() >= -1 - eps
    if "ivfpq" not in name:
        np.testing.assert_array_equal(rows[:, 0], np.arange(100))
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_pca_reduces_the_stored_dimension(build_index):
    index = build_index("flat+pca")
    assert index.dim == DIM
    assert isinstance(index.faiss_index, faiss.IndexPreTransform)
    assert faiss.downcast_index(index.faiss_index.index).d == 16


@pytest.mark.parametrize("pca_dim", [None, 16])
def test_nprobe_is_set_on_the_faiss_index(vectors, pca_dim):
    index = DenseIndex(index_type="ivf", nlist=20, nprobe=7, pca_dim=pca_dim, device="cpu")
    index.build(vectors, fingerprint=FINGERPRINT)
    assert faiss.extract_index_ivf(index.faiss_index).nprobe == 7
    assert faiss.extract_index_ivf(index.faiss_index).nlist == 20


def test_nprobe_is_capped_at_nlist(vectors):
    index = DenseIndex(index_type="ivf", nlist=4, nprobe=16, device="cpu")
    index.build(vectors, fingerprint=FINGERPRINT)
    assert faiss.extract_index_ivf(index.faiss_index).nprobe == 4
    assert index.meta["params"]["nprobe"] == 16


def test_hnsw_options_are_set(vectors):
    index = DenseIndex(index_type="hnsw", hnsw_m=8, ef_construction=40, ef_search=50)
    index.build(vectors[:300], fingerprint=FINGERPRINT)
    hnsw = faiss.downcast_index(index.faiss_index).hnsw
    assert (hnsw.efSearch, hnsw.efConstruction) == (50, 40)


def test_auto_nlist():
    assert auto_nlist(1) == 1
    assert auto_nlist(100) == 2  # 100 // 39: every list keeps >= 39 training points
    assert auto_nlist(2000) == 51
    assert auto_nlist(1_000_000) == 4000  # 4 * sqrt(n)


def test_auto_nlist_is_recorded(build_index):
    index = build_index("ivf")
    assert index.meta["params"]["nlist"] == auto_nlist(COUNT)
    assert faiss.extract_index_ivf(index.faiss_index).nlist == auto_nlist(COUNT)


def test_meta(build_index):
    meta = build_index("ivf+pca").meta
    assert meta["format_version"] == 1
    assert (meta["dim"], meta["count"], meta["metric"]) == (DIM, COUNT, "ip")
    assert (meta["index_type"], meta["pca_dim"]) == ("ivf", 16)
    assert meta["fingerprint"] == FINGERPRINT
    assert meta["faiss_version"] == faiss.__version__
    assert meta["params"]["nprobe"] == 16 and meta["params"]["seed"] == 0
    assert "device" not in meta["params"]
    meta["params"]["nprobe"] = 1
    assert build_index("ivf+pca").meta["params"]["nprobe"] == 16, "meta is a copy"


def test_k_larger_than_ntotal_pads(vectors):
    index = DenseIndex(device="cpu")
    index.build(vectors[:3], fingerprint=FINGERPRINT)
    scores, rows = index.search(vectors[:2], 5)
    assert scores.shape == rows.shape == (2, 5)
    assert set(rows[:, :3].ravel()) == {0, 1, 2}
    assert np.all(rows[:, 3:] == -1) and np.all(scores[:, 3:] == -np.inf)
    assert np.all(np.isfinite(scores[:, :3]))


@pytest.mark.parametrize("name", ["flat", "ivf", "hnsw"])
def test_no_queries(build_index, name):
    scores, rows = build_index(name).search(np.zeros((0, DIM), dtype=np.float32), 4)
    assert scores.shape == rows.shape == (0, 4)
    assert scores.dtype == np.float32 and rows.dtype == np.int64


def test_float64_queries_and_vectors_are_cast(vectors):
    index = DenseIndex(device="cpu")
    index.build(vectors[:50].astype(np.float64), fingerprint=FINGERPRINT)
    scores, rows = index.search(vectors[:5].astype(np.float64).T.copy().T, 1)
    np.testing.assert_array_equal(rows[:, 0], np.arange(5))


@pytest.mark.parametrize(
    "bad,problem",
    [
        (np.zeros(DIM, dtype=np.float32), "2 dimensions"),
        (np.zeros((0, DIM), dtype=np.float32), "no vectors"),
        (np.zeros((5, 0), dtype=np.float32), "no vectors"),
        (np.full((5, DIM), np.nan, dtype=np.float32), "NaN"),
        (np.full((5, DIM), np.inf, dtype=np.float32), "NaN or infinite"),
        (np.array([["a"] * DIM] * 3), "not numbers"),
    ],
)
def test_bad_vectors_are_refused(bad, problem):
    with pytest.raises(ValueError, match=problem) as err:
        DenseIndex().build(bad, fingerprint=FINGERPRINT)
    assert str(bad.shape) in str(err.value)


def test_bad_queries_are_refused(build_index):
    index = build_index("flat")
    with pytest.raises(ValueError, match=r"shape \(2, 16\).*dimension 32"):
        index.search(np.zeros((2, 16), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="2 dimensions"):
        index.search(np.zeros(DIM, dtype=np.float32), 3)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, DIM), np.nan, dtype=np.float32), 3)
    for k in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"E702.*Option k must be an integer >= 1"):
            index.search(np.zeros((1, DIM), dtype=np.float32), k)


def test_unbuilt_index_refuses_use():
    index = DenseIndex()
    assert index.ntotal == 0 and index.faiss_index is None and index.backend is None
    with pytest.raises(ValueError, match="before searching"):
        index.search(np.zeros((1, DIM), dtype=np.float32), 1)
    with pytest.raises(ValueError, match="call build"):
        index.dim
    with pytest.raises(ValueError, match="call build"):
        index.to_bytes()


def test_fingerprint_is_required(vectors):
    for fingerprint in ("", None):
        with pytest.raises(ValueError, match="fingerprint must be a non-empty string"):
            DenseIndex().build(vectors, fingerprint=fingerprint)


@pytest.mark.parametrize(
    "options,match",
    [
        ({"index_type": "annoy"}, "Unknown index type 'annoy'.*flat, ivf, hnsw, ivfpq"),
        ({"pca_dim": 0}, "pca_dim=0"),
        ({"pca_dim": 8.0}, "pca_dim=8.0"),
        ({"nlist": 0}, "nlist=0"),
        ({"nprobe": 0}, "nprobe=0"),
        ({"hnsw_m": 1}, "hnsw_m=1"),
        ({"ef_search": True}, "ef_search=True"),
        ({"pq_nbits": 17}, r"pq_nbits=17.*\[1, 16\]"),
        ({"seed": -1}, "seed=-1"),
        ({"device": "tpu"}, "Unknown search device 'tpu'"),
        ({"index_type": "ivfpq", "pca_dim": 20, "pq_m": 8}, "pq_m=8 must divide .* 20"),
    ],
)
def test_constructor_validates_options(options, match):
    with pytest.raises(ValueError, match=match):
        DenseIndex(**options)


def test_constructor_does_no_faiss_work(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("faiss or device probing used in the constructor")

    monkeypatch.setattr(dense_index_module, "choose_search_backend", fail)
    monkeypatch.setattr(faiss, "IndexFlatIP", fail)
    for index_type in INDEX_TYPES:
        options = {"factory": "PCA16,Flat"} if index_type == "factory" else {"pca_dim": 16}
        DenseIndex(index_type=index_type, device="faiss-gpu", **options)


@pytest.mark.parametrize(
    "options,count,match",
    [
        ({"pca_dim": 32}, 100, "pca_dim=32 must be smaller than the vector dimension 32"),
        ({"pca_dim": 16}, 10, "needs at least 16 vectors .* got 10"),
        ({"index_type": "ivf", "nlist": 200}, 100, r"nlist=200 .* \(100\)"),
        ({"index_type": "ivfpq", "pq_m": 5}, 300, "pq_m=5 must divide the dimension 32"),
        ({"index_type": "ivfpq", "pq_m": 8}, 200, "at least 256 vectors.*got 200"),
    ],
)
def test_build_refuses_impossible_options(vectors, options, count, match):
    with pytest.raises(ValueError, match=match):
        DenseIndex(**options).build(vectors[:count], fingerprint=FINGERPRINT)


def test_tiny_ivf_uses_one_list(vectors):
    index = DenseIndex(index_type="ivf", device="cpu")
    index.build(vectors[:5], fingerprint=FINGERPRINT)
    assert index.meta["params"]["nlist"] == 1
    np.testing.assert_array_equal(index.search(vectors[:5], 1)[1][:, 0], np.arange(5))


@pytest.mark.parametrize("name", ["ivf", "ivfpq", "ivf+pca", "flat+pca"])
def test_build_is_deterministic(vectors, name):
    first, second = (DenseIndex(**CONFIGS[name], device="cpu") for _ in range(2))
    first.build(vectors, fingerprint=FINGERPRINT)
    second.build(vectors, fingerprint=FINGERPRINT)
    assert first.to_bytes() == second.to_bytes()


def test_seed_changes_the_clustering(vectors):
    first, second = (DenseIndex(index_type="ivf", seed=s, device="cpu") for s in (0, 1))
    first.build(vectors, fingerprint=FINGERPRINT)
    second.build(vectors, fingerprint=FINGERPRINT)
    assert first.to_bytes() != second.to_bytes()


def test_training_sample_is_capped_and_seeded(monkeypatch):
    monkeypatch.setattr(dense_index_module, "_PCA_TRAIN_POINTS", 100)
    x = unit_vectors(1000)
    sample = dense_index_module._training_sample(x, nlist=None, seed=3)
    again = dense_index_module._training_sample(x, nlist=None, seed=3)
    assert sample.shape == (100, DIM)
    np.testing.assert_array_equal(sample, again)
    assert dense_index_module._training_sample(x, nlist=2, seed=3).shape == (512, DIM)
    assert dense_index_module._training_sample(x[:50], nlist=None, seed=3).shape == (50, DIM)


def test_rebuild_replaces_content(vectors):
    index = DenseIndex(device="cpu")
    index.build(vectors[:10], fingerprint="a")
    index.search(vectors[:1], 1)
    index.build(vectors[10:30], fingerprint="b")
    assert index.ntotal == 20 and index.meta["fingerprint"] == "b"
    np.testing.assert_array_equal(index.search(vectors[10:12], 1)[1][:, 0], [0, 1])
