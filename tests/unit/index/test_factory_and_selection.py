"""Indexes built from faiss ``index_factory`` strings (and user-given ones), indexes
saved before the factory strings, and searches restricted to allowed rows with a
faiss ID selector."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from spacy_sapel.index import DenseIndex, factory_string
from spacy_sapel.index import dense_index as dense_index_module
from spacy_sapel.util import read_json, write_json

from index_data import CONFIGS, FINGERPRINT, brute_force
from test_index_device import built, cpu_torch_searcher, stub_probes

EXPECTED_FACTORY = {
    "flat": "Flat",
    "ivf": "IVF51,Flat",
    "hnsw": "HNSW32,Flat",
    "ivfpq": "IVF51,PQ16x6",
    "flat+pca": "PCA16,L2norm,Flat",
    "ivf+pca": "PCA16,L2norm,IVF51,Flat",
    "hnsw+pca": "PCA16,L2norm,HNSW32,Flat",
    "ivfpq+pca": "PCA16,L2norm,IVF51,PQ16x6",
}


def hand_built(dim: int, params: dict) -> faiss.Index:
    """The index as spacy_sapel assembled it from faiss classes before the factory
    strings: the reference the factory-built index must equal."""
    ip = faiss.METRIC_INNER_PRODUCT
    work_dim = params["pca_dim"] or dim
    kind = params["index_type"]
    if kind == "flat":
        index = faiss.IndexFlatIP(work_dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(work_dim, params["hnsw_m"], ip)
        index.hnsw.efConstruction = params["ef_construction"]
    else:
        quantizer = faiss.IndexFlatIP(work_dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, work_dim, params["nlist"], ip)
        else:
            index = faiss.IndexIVFPQ(
                quantizer, work_dim, params["nlist"], params["pq_m"], params["pq_nbits"], ip
            )
            index.pq.cp.seed = params["seed"]
        index.cp.seed = params["seed"]
    if params["pca_dim"] is None:
        return index
    chained = faiss.IndexPreTransform(index)
    chained.prepend_transform(faiss.NormalizationTransform(params["pca_dim"], 2.0))
    chained.prepend_transform(faiss.PCAMatrix(dim, params["pca_dim"]))
    return chained


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_type_is_built_from_its_factory_string_as_before(build_index, vectors, queries, name):
    index = build_index(name)
    meta = index.meta
    assert meta["factory"] == EXPECTED_FACTORY[name] == factory_string(meta["params"])
    reference = hand_built(vectors.shape[1], meta["params"])
    reference.train(vectors)
    reference.add(vectors)
    dense_index_module._apply_search_params(reference, meta["params"])
    expected_scores, expected_rows = reference.search(queries, 10)
    scores, rows = index.search(queries, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_storage_and_auto_map_to_factory_strings(vectors, monkeypatch):
    for storage, code in (("fp16", "SQfp16"), ("sq8", "SQ8")):
        for kind, prefix in (("flat", ""), ("ivf", "IVF8,"), ("hnsw", "HNSW32,")):
            index = built(vectors, index_type=kind, storage=storage, nlist=8, device="cpu")
            assert index.meta["factory"] == f"{prefix}{code}"
    monkeypatch.setattr(dense_index_module, "AUTO_EXACT_MAX", 500)
    index = built(vectors, index_type="auto", device="cpu")
    nlist = dense_index_module.auto_nlist(len(vectors))
    assert index.meta["factory"] == f"IVF{nlist},Flat" and index.meta["params"]["nprobe"] >= 32


def test_a_user_factory_string_is_built_saved_and_loaded(vectors, queries, tmp_path):
    index = DenseIndex(index_type="factory", factory="PCA16,L2norm,IVF8,SQ8", nprobe=8, device="cpu")
    index.build(vectors, fingerprint=FINGERPRINT)
    assert index.meta["factory"] == "PCA16,L2norm,IVF8,SQ8" and index.index_type == "factory"
    ivf = faiss.extract_index_ivf(index.faiss_index)
    assert ivf.nlist == 8 and ivf.nprobe == 8
    index.to_disk(tmp_path / "index")
    loaded = DenseIndex.from_disk(tmp_path / "index", device="cpu")
    assert loaded.meta["factory"] == "PCA16,L2norm,IVF8,SQ8"
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])
    # same seed, same index
    again = DenseIndex(index_type="factory", factory="PCA16,L2norm,IVF8,SQ8", nprobe=8, device="cpu")
    again.build(vectors, fingerprint=FINGERPRINT)
    np.testing.assert_array_equal(again.search(queries, 5)[1], index.search(queries, 5)[1])


@pytest.mark.parametrize(
    "options,match",
    [
        ({"index_type": "factory"}, "E102.*factory"),
        ({"index_type": "factory", "factory": "IVF8,Flat", "storage": "sq8"}, "E124"),
        ({"index_type": "factory", "factory": "Flat", "pca_dim": 8}, "E124"),
        ({"index_type": "ivf", "factory": "IVF8,Flat"}, "E125"),
    ],
)
def test_factory_option_mistakes(options, match):
    with pytest.raises(ValueError, match=match):
        DenseIndex(**options)


@pytest.mark.parametrize(
    "factory,match",
    [("IVF8,Flatt", "E122.*'IVF8,Flatt'"), ("PQ5", "E122"), ("IVF5000,Flat", "E109")],
)
def test_bad_factory_strings_are_refused_before_the_vectors_exist(factory, match):
    index = DenseIndex(index_type="factory", factory=factory)
    with pytest.raises(ValueError, match=match):
        index.check_build(2000, 32)


def test_faiss_training_failures_are_clear_errors(vectors):
    index = DenseIndex(index_type="factory", factory="PQ4x10", device="cpu")
    with pytest.raises(ValueError, match=r"E123.*'PQ4x10' with 300 vectors.*Number of training points"):
        index.build(vectors[:300], fingerprint=FINGERPRINT)


def test_unknown_options_are_named_with_the_closest_valid_one():
    with pytest.raises(ValueError, match=r"E121.*'nprob' \(did you mean 'nprobe'\?\)"):
        DenseIndex.from_options("ivf", {"nprob": 4})
    assert DenseIndex.from_options("ivf", {"nprobe": 4}).index_type == "ivf"


def test_an_index_saved_before_factory_strings_still_loads(build_index, queries, tmp_path):
    """Indexes written by earlier versions have no ``factory`` in their meta or params."""
    index = build_index("ivf+pca")
    index.to_disk(tmp_path / "index")
    meta = read_json(tmp_path / "index" / "meta.json")
    del meta["factory"], meta["params"]["factory"]
    write_json(tmp_path / "index" / "meta.json", meta)
    loaded = DenseIndex.from_disk(tmp_path / "index", device="cpu")
    assert "factory" not in loaded.meta
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])


def test_a_factory_index_faiss_cannot_put_on_a_gpu_falls_back(monkeypatch, vectors):
    def no_hnsw_on_gpu(index, **options):
        raise AssertionError("hnsw sent to faiss GPU")

    stub_probes(monkeypatch, gpus=1, smoke=True, cuda=True)
    cpu_torch_searcher(monkeypatch)
    monkeypatch.setattr(dense_index_module, "to_gpus", no_hnsw_on_gpu)
    index = built(vectors[:300], index_type="factory", factory="HNSW16,Flat", device="auto")
    index.search(vectors[:3], 2)
    assert index.backend == "torch-gpu"


# --- search restricted to allowed rows --------------------------------------------
@pytest.mark.parametrize("name", ["flat", "ivf", "hnsw", "ivfpq+pca"])
def test_selection_returns_the_best_allowed_rows_in_one_search(build_index, vectors, queries, name):
    index = build_index(name)
    assert index.supports_selection
    allowed = np.zeros(index.ntotal, dtype=bool)
    allowed[::13] = True
    scores, rows = index.search(queries, 10, allowed=allowed)
    assert allowed[rows].all()
    if name == "flat":
        exact = brute_force(vectors[allowed], queries, 10)[1]
        np.testing.assert_array_equal(rows, np.flatnonzero(allowed)[exact])
    else:
        # the approximate index ranks the allowed rows as its unfiltered search does
        _, wide = index.search(queries, index.ntotal)
        for filtered, everything in zip(rows, wide):
            kept = [row for row in everything if row >= 0 and allowed[row]]
            assert len(set(filtered) & set(kept[:10])) >= 8


def test_selection_with_few_allowed_rows_pads_and_checks_the_mask(build_index, queries):
    index = build_index("flat")
    allowed = np.zeros(index.ntotal, dtype=bool)
    allowed[[3, 7]] = True
    scores, rows = index.search(queries[:2], 5, allowed=allowed)
    assert sorted(rows[0][:2]) == [3, 7] and (rows[:, 2:] == -1).all()
    assert np.isneginf(scores[:, 2:]).all()
    with pytest.raises(ValueError, match="boolean mask over the 2000 rows"):
        index.search(queries, 5, allowed=allowed[:10])


def test_gpu_and_torch_backends_do_not_select(monkeypatch, vectors):
    stub_probes(monkeypatch, gpus=0, smoke=False, cuda=True)
    cpu_torch_searcher(monkeypatch)
    index = built(vectors[:300], device="torch-gpu")
    assert not index.supports_selection
    with pytest.raises(ValueError, match="E126"):
        index.search(vectors[:2], 3, allowed=np.ones(300, dtype=bool))
