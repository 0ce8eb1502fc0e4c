"""The ``auto`` index type and the fp16 / sq8 vector storages."""
from __future__ import annotations

import numpy as np
import pytest

from spacy_sapel.index import DenseIndex
from spacy_sapel.index import dense_index as dense_index_module
from spacy_sapel.index.dense_index import resolve_index_type

from index_data import FINGERPRINT, brute_force, unit_vectors


def test_auto_rule():
    limit = dense_index_module.AUTO_EXACT_MAX
    assert resolve_index_type("auto", 10) == "flat"
    assert resolve_index_type("auto", limit) == "flat"
    assert resolve_index_type("auto", limit + 1) == "ivf"
    assert resolve_index_type("hnsw", 10) == "hnsw"


def test_auto_small_is_exact_and_meta_records_the_resolved_type(vectors, queries, tmp_path):
    index = DenseIndex(index_type="auto", device="cpu")
    assert index.index_type == "auto"
    index.build(vectors, fingerprint=FINGERPRINT)
    assert index.index_type == "flat"
    assert index.meta["index_type"] == index.meta["params"]["index_type"] == "flat"
    assert index.meta["requested_index_type"] == "auto"
    _, rows = index.search(queries, 5)
    np.testing.assert_array_equal(rows, brute_force(vectors, queries, 5)[1])
    index.to_disk(tmp_path / "index")
    assert DenseIndex.from_disk(tmp_path / "index").index_type == "flat"


def test_auto_large_is_ivf_with_enough_probes(monkeypatch, vectors, queries, tmp_path):
    monkeypatch.setattr(dense_index_module, "AUTO_EXACT_MAX", 500)
    index = DenseIndex(index_type="auto", device="cpu", seed=3)
    index.build(vectors, fingerprint=FINGERPRINT)
    meta = index.meta
    assert meta["index_type"] == "ivf" and meta["requested_index_type"] == "auto"
    assert meta["params"]["nlist"] == dense_index_module.auto_nlist(len(vectors))
    assert meta["params"]["nprobe"] == dense_index_module.AUTO_MIN_NPROBE
    _, rows = index.search(queries, 10)
    _, exact = brute_force(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert recall >= 0.95
    index.to_disk(tmp_path / "index")
    loaded = DenseIndex.from_disk(tmp_path / "index", device="cpu")
    assert loaded.index_type == "ivf"
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], rows)


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("storage", ["fp16", "sq8"])
def test_storage_shrinks_the_index_and_keeps_the_ranking(
    vectors, queries, tmp_path, index_type, storage
):
    index = DenseIndex(index_type=index_type, storage=storage, device="cpu")
    index.build(vectors, fingerprint=FINGERPRINT)
    _, rows = index.search(queries, 10)
    _, exact = brute_force(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert recall >= (0.97 if storage == "fp16" else 0.85)
    index.to_disk(tmp_path / "small")
    reference = DenseIndex(index_type=index_type, device="cpu")
    reference.build(vectors, fingerprint=FINGERPRINT)
    reference.to_disk(tmp_path / "big")
    small = (tmp_path / "small" / "index.faiss").stat().st_size
    big = (tmp_path / "big" / "index.faiss").stat().st_size
    assert small < big
    loaded = DenseIndex.from_disk(tmp_path / "small", device="cpu")
    assert loaded.meta["params"]["storage"] == storage
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], rows)


def test_bad_storage():
    with pytest.raises(ValueError, match="E118.*'int4'.*fp32, fp16, sq8"):
        DenseIndex(storage="int4")
    with pytest.raises(ValueError, match="E119.*ivfpq"):
        DenseIndex(index_type="ivfpq", storage="fp16")


def test_index_written_before_storage_existed_loads(tmp_path):
    """A meta without the storage option (older spacy_sapel) means fp32."""
    import srsly

    x = unit_vectors(100)
    index = DenseIndex(device="cpu")
    index.build(x, fingerprint=FINGERPRINT)
    index.to_disk(tmp_path / "index")
    meta = srsly.read_json(tmp_path / "index" / "meta.json")
    del meta["params"]["storage"], meta["requested_index_type"]
    srsly.write_json(tmp_path / "index" / "meta.json", meta)
    loaded = DenseIndex.from_disk(tmp_path / "index", device="cpu")
    np.testing.assert_array_equal(loaded.search(x[:5], 3)[1], index.search(x[:5], 3)[1])
