"""DenseIndex to_disk/from_disk and to_bytes/from_bytes: round trips, memory mapping,
atomic writes, and refusal of mismatched, truncated or corrupt data."""
from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np
import pytest
import srsly

from spacy_sapel.errors import IndexLoadError
from spacy_sapel.index import DenseIndex

from index_data import CONFIGS, COUNT, DIM, FINGERPRINT, unit_vectors


@pytest.fixture
def saved(build_index, tmp_path) -> Path:
    """A flat index saved to a fresh directory."""
    path = tmp_path / "index"
    build_index("flat").to_disk(path)
    return path


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_disk_round_trip(build_index, queries, tmp_path, name, mmap):
    index = build_index(name)
    index.to_disk(tmp_path / "index")
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["index.faiss", "meta.json"]
    loaded = DenseIndex.from_disk(tmp_path / "index", mmap=mmap, device="cpu")
    assert loaded.meta == index.meta
    assert (loaded.dim, loaded.ntotal, loaded.index_type) == (DIM, COUNT, index.index_type)
    for got, expected in zip(loaded.search(queries, 10), index.search(queries, 10)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bytes_round_trip(build_index, queries, name):
    index = build_index(name)
    loaded = DenseIndex.from_bytes(index.to_bytes(), device="cpu")
    assert loaded.meta == index.meta
    for got, expected in zip(loaded.search(queries, 10), index.search(queries, 10)):
        np.testing.assert_array_equal(got, expected)


def test_search_params_survive_loading(vectors, tmp_path):
    index = DenseIndex(index_type="ivf", nlist=20, nprobe=3, pca_dim=16, device="cpu")
    index.build(vectors, fingerprint=FINGERPRINT)
    index.to_disk(tmp_path / "ivf")
    for loaded in (
        DenseIndex.from_disk(tmp_path / "ivf", device="cpu"),
        DenseIndex.from_bytes(index.to_bytes(), device="cpu"),
    ):
        assert faiss.extract_index_ivf(loaded.faiss_index).nprobe == 3


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux page-cache sharing")
def test_mmap_reads_the_file_in_place(saved, queries):
    """Overwrite the stored vectors inside the file after loading: only a mapped index
    sees the change."""
    mapped = DenseIndex.from_disk(saved, mmap=True, device="cpu")
    read = DenseIndex.from_disk(saved, mmap=False, device="cpu")
    before = read.search(queries, 5)
    data_file = saved / "index.faiss"
    size = data_file.stat().st_size
    with open(data_file, "r+b") as f:  # zero the middle of the vector block in place
        f.seek(size // 4)
        f.write(b"\0" * (size // 2))
    after_read = read.search(queries, 5)
    after_mapped = mapped.search(queries, 5)
    np.testing.assert_array_equal(after_read[1], before[1])
    assert not np.array_equal(after_mapped[0], before[0])


def test_save_over_a_mapped_index(saved, queries):
    mapped = DenseIndex.from_disk(saved, mmap=True, device="cpu")
    expected = mapped.search(queries, 5)
    mapped.to_disk(saved)
    np.testing.assert_array_equal(mapped.search(queries, 5)[1], expected[1])
    reloaded = DenseIndex.from_disk(saved, device="cpu")
    np.testing.assert_array_equal(reloaded.search(queries, 5)[1], expected[1])


def test_fingerprint_mismatch_is_refused(saved):
    with pytest.raises(IndexLoadError) as err:
        DenseIndex.from_disk(saved, expected_fingerprint="other-encoder", device="cpu")
    message = str(err.value)
    assert str(saved) in message
    assert FINGERPRINT in message and "other-encoder" in message
    assert "build-kb" in message


def test_dim_mismatch_is_refused(saved):
    with pytest.raises(IndexLoadError, match=rf"{saved}.*dimension 32.*dimension 768"):
        DenseIndex.from_disk(saved, expected_dim=768, device="cpu")


def test_matching_expectations_load(saved):
    loaded = DenseIndex.from_disk(
        saved, expected_dim=DIM, expected_fingerprint=FINGERPRINT, device="cpu"
    )
    assert loaded.ntotal == COUNT


def test_bytes_mismatch_is_refused(build_index):
    data = build_index("flat").to_bytes()
    with pytest.raises(IndexLoadError, match="other-encoder"):
        DenseIndex.from_bytes(data, expected_fingerprint="other-encoder")
    with pytest.raises(IndexLoadError, match="768"):
        DenseIndex.from_bytes(data, expected_dim=768)


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("name", ["flat", "ivf", "hnsw", "ivfpq+pca"])
def test_truncated_index_file(build_index, tmp_path, name, mmap):
    path = tmp_path / "index"
    build_index(name).to_disk(path)
    data = (path / "index.faiss").read_bytes()
    (path / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match="index.faiss.*truncated or corrupt"):
        DenseIndex.from_disk(path, mmap=mmap, device="cpu")


@pytest.mark.parametrize("garbage", [b"", b"not a faiss index" * 10, bytes(range(256)) * 8])
def test_garbage_index_file(saved, garbage):
    (saved / "index.faiss").write_bytes(garbage)
    for mmap in (True, False):
        with pytest.raises(IndexLoadError, match="index.faiss"):
            DenseIndex.from_disk(saved, mmap=mmap, device="cpu")


def test_missing_parts(saved, tmp_path):
    with pytest.raises(IndexLoadError, match="no such directory"):
        DenseIndex.from_disk(tmp_path / "nowhere")
    (saved / "index.faiss").unlink()
    with pytest.raises(IndexLoadError, match="index.faiss is missing"):
        DenseIndex.from_disk(saved)
    (saved / "meta.json").unlink()
    with pytest.raises(IndexLoadError, match=rf"{saved}.*meta.json is missing"):
        DenseIndex.from_disk(saved)


def test_unreadable_meta(saved):
    (saved / "meta.json").write_text("{not json", encoding="utf8")
    with pytest.raises(IndexLoadError, match="meta.json.*not readable JSON"):
        DenseIndex.from_disk(saved)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"format_version": 99}, "unsupported format_version 99"),
        ({"count": COUNT + 1}, f"{COUNT + 1} vectors .* holds {COUNT}"),
        ({"dim": 16}, "dimension 16 .* dimension 32"),
        ({"metric": "l2"}, "unsupported metric 'l2'"),
        ({"fingerprint": None}, "'fingerprint' is missing"),
        ({"params": {"index_type": "annoy"}}, "params are invalid.*annoy"),
        ({"params": {"colour": "blue"}}, "params are invalid.*colour"),
    ],
)
def test_inconsistent_meta(saved, change, match):
    meta = srsly.read_json(saved / "meta.json")
    srsly.write_json(saved / "meta.json", {**meta, **change})
    with pytest.raises(IndexLoadError, match=match):
        DenseIndex.from_disk(saved, device="cpu")


def test_interrupted_write_keeps_the_previous_index(saved, queries, monkeypatch):
    expected = DenseIndex.from_disk(saved, device="cpu").search(queries, 5)
    write_index = faiss.write_index

    def write_half_then_fail(index, filename):
        write_index(index, filename)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        raise RuntimeError("disk full")

    other = DenseIndex(device="cpu")
    other.build(unit_vectors(50, seed=5), fingerprint="other")
    monkeypatch.setattr(faiss, "write_index", write_half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        other.to_disk(saved)
    monkeypatch.undo()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index"], "temp dir left"
    loaded = DenseIndex.from_disk(saved, device="cpu")
    assert loaded.meta["fingerprint"] == FINGERPRINT
    for got, want in zip(loaded.search(queries, 5), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "not valid msgpack"),
        (b"\xc1garbage", "not valid msgpack"),
        (srsly.msgpack_dumps([1, 2, 3]), "'meta' and 'index'"),
        (srsly.msgpack_dumps({"meta": {}, "index": b""}), "format_version"),
    ],
)
def test_garbage_bytes(data, match):
    with pytest.raises(IndexLoadError, match=match):
        DenseIndex.from_bytes(data)


def test_truncated_faiss_blob(build_index):
    msg = srsly.msgpack_loads(build_index("hnsw").to_bytes())
    msg["index"] = msg["index"][: len(msg["index"]) // 2]
    with pytest.raises(IndexLoadError, match="<bytes>.*truncated or corrupt"):
        DenseIndex.from_bytes(srsly.msgpack_dumps(msg), device="cpu")


def test_loading_keeps_the_requested_device(saved):
    loaded = DenseIndex.from_disk(saved, device="cpu")
    assert loaded.device == "cpu" and loaded.backend == "cpu"


def test_numpy_integer_options_serialize(vectors, tmp_path):
    index = DenseIndex(index_type="ivf", nlist=np.int64(4), nprobe=np.int32(2), device="cpu")
    index.build(vectors[:200], fingerprint=FINGERPRINT)
    index.to_disk(tmp_path / "index")
    loaded = DenseIndex.from_disk(tmp_path / "index", device="cpu")
    assert loaded.meta["params"]["nlist"] == 4 and loaded.meta["params"]["nprobe"] == 2
