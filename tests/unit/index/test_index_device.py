"""Search backend choice with the hardware probes stubbed, and the DenseIndex
fallbacks when faiss cannot put an index on the GPU."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from spacy_sapel import _compat
from spacy_sapel.index import DenseIndex, backends, device
from spacy_sapel.index import dense_index as dense_index_module
from spacy_sapel.index.device import choose_search_backend

from index_data import FINGERPRINT


def stub_probes(monkeypatch, *, gpus: int, smoke: bool, cuda: bool) -> None:
    """Pretend faiss sees ``gpus`` GPUs, the smoke test gives ``smoke`` and torch
    sees a CUDA GPU when ``cuda``. The smoke test must not run without GPUs."""

    def smoke_test() -> bool:
        assert gpus > 0, "smoke test run although faiss sees no GPU"
        return smoke

    monkeypatch.setattr(device, "faiss_gpu_count", lambda: gpus)
    monkeypatch.setattr(device, "faiss_gpu_smoke_test", smoke_test)
    monkeypatch.setattr(device, "torch_cuda_available", lambda: cuda)
    monkeypatch.setattr(dense_index_module, "torch_cuda_available", lambda: cuda)


# (preference, faiss GPUs, smoke test passes, torch CUDA) -> backend, or None = error
MATRIX = [
    ("auto", 0, False, False, "cpu"),
    ("auto", 0, False, True, "torch-gpu"),
    ("auto", 1, True, False, "faiss-gpu"),
    ("auto", 2, True, True, "faiss-gpu"),
    ("auto", 1, False, True, "torch-gpu"),
    ("auto", 1, False, False, "cpu"),
    ("cpu", 2, True, True, "cpu"),
    ("gpu", 1, True, True, "faiss-gpu"),
    ("gpu", 1, False, True, "torch-gpu"),
    ("gpu", 0, False, True, "torch-gpu"),
    ("gpu", 0, False, False, None),
    ("gpu", 1, False, False, None),
    ("faiss-gpu", 1, True, False, "faiss-gpu"),
    ("faiss-gpu", 0, False, True, None),
    ("faiss-gpu", 1, False, True, None),
    ("torch-gpu", 2, True, True, "torch-gpu"),
    ("torch-gpu", 2, True, False, None),
]


@pytest.mark.parametrize("preference,gpus,smoke,cuda,expected", MATRIX)
def test_backend_matrix(monkeypatch, preference, gpus, smoke, cuda, expected):
    stub_probes(monkeypatch, gpus=gpus, smoke=smoke, cuda=cuda)
    if expected is None:
        with pytest.raises(ValueError, match=rf"'{preference}' was requested but cannot"):
            choose_search_backend(preference)
    else:
        assert choose_search_backend(preference) == expected


def test_choice_and_reason_are_logged(monkeypatch, caplog):
    stub_probes(monkeypatch, gpus=1, smoke=False, cuda=True)
    with caplog.at_level(logging.INFO, logger="spacy_sapel"):
        assert choose_search_backend("auto") == "torch-gpu"
    messages = [r.getMessage() for r in caplog.records]
    assert any("test search on GPU 0 failed" in m for m in messages)
    assert any("torch-gpu" in m and "faiss GPU test search failed" in m for m in messages)


def test_unknown_preference():
    with pytest.raises(ValueError, match="Unknown search device 'cuda'"):
        choose_search_backend("cuda")


def test_real_probes_on_a_cpu_faiss(monkeypatch):
    monkeypatch.setattr(device, "FAISS_HAS_GPU_MODULE", False)
    assert device.faiss_gpu_count() == 0
    assert choose_search_backend("cpu") == "cpu"
    with pytest.raises(ValueError, match="no GPU support"):
        choose_search_backend("faiss-gpu")


@pytest.mark.skipif(_compat.FAISS_HAS_GPU_MODULE, reason="faiss GPU build installed")
def test_smoke_test_is_false_without_gpus():
    assert device.faiss_gpu_smoke_test() is False


def test_probe_types():
    assert isinstance(device.faiss_gpu_count(), int)
    assert isinstance(device.torch_cuda_available(), bool)


@pytest.fixture
def small(vectors):
    return vectors[:300]


def built(small, **options) -> DenseIndex:
    index = DenseIndex(**options)
    index.build(small, fingerprint=FINGERPRINT)
    return index


def cpu_torch_searcher(monkeypatch):
    """Make the torch-gpu backend run on CPU tensors."""
    from_faiss = backends.TorchSearcher.from_faiss.__func__

    def on_cpu(cls, index, *, device, half=False):
        return from_faiss(cls, index, device="cpu", half=half)

    monkeypatch.setattr(backends.TorchSearcher, "from_faiss", classmethod(on_cpu))


def test_backend_is_chosen_lazily(monkeypatch, small):
    calls = []
    monkeypatch.setattr(
        dense_index_module, "choose_search_backend", lambda p: calls.append(p) or "cpu"
    )
    index = built(small, device="auto")
    assert calls == [] and index.backend is None
    index.search(small[:2], 3)
    index.search(small[:2], 3)
    assert calls == ["auto"] and index.backend == "cpu"


def test_backend_is_chosen_when_loading(monkeypatch, small, tmp_path):
    built(small, device="cpu").to_disk(tmp_path / "index")
    stub_probes(monkeypatch, gpus=0, smoke=False, cuda=False)
    with pytest.raises(ValueError, match="'torch-gpu' was requested"):
        DenseIndex.from_disk(tmp_path / "index", device="torch-gpu")
    assert DenseIndex.from_disk(tmp_path / "index", device="auto").backend == "cpu"


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_torch_gpu_backend_matches_exact_search(monkeypatch, small, index_type):
    stub_probes(monkeypatch, gpus=0, smoke=False, cuda=True)
    cpu_torch_searcher(monkeypatch)
    index = built(small, index_type=index_type, device="auto")
    scores, rows = index.search(small[:20], 5)
    assert index.backend == "torch-gpu"
    exact_scores, exact_rows = built(small, device="cpu").search(small[:20], 5)
    np.testing.assert_array_equal(rows, exact_rows)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)


def test_faiss_gpu_backend_wiring(monkeypatch, small):
    """With faiss-gpu chosen, the index goes through to_gpus (stubbed: stays on the
    CPU) with its nprobe."""
    seen = {}

    def fake_to_gpus(index, *, nprobe=None, **options):
        seen["nprobe"] = nprobe
        seen.update(options)
        return index

    stub_probes(monkeypatch, gpus=2, smoke=True, cuda=True)
    monkeypatch.setattr(dense_index_module, "to_gpus", fake_to_gpus)
    index = built(small, index_type="ivf", nlist=4, nprobe=2)
    index.search(small[:3], 2)
    assert index.backend == "faiss-gpu" and seen["nprobe"] == 2
    assert seen["shard"] is True and seen["float16"] is False


@pytest.mark.parametrize("sharding,storage", [("replicate", "fp16"), ("shard", "sq8")])
def test_faiss_gpu_sharding_and_half_storage(monkeypatch, small, sharding, storage):
    seen = {}

    def fake_to_gpus(index, *, nprobe=None, **options):
        seen.update(options)
        return index

    stub_probes(monkeypatch, gpus=2, smoke=True, cuda=True)
    monkeypatch.setattr(dense_index_module, "to_gpus", fake_to_gpus)
    index = built(small, index_type="ivf", nlist=4, gpu_sharding=sharding, storage=storage)
    index.search(small[:3], 2)
    assert seen == {"shard": sharding == "shard", "float16": storage == "fp16"}


def test_flat_fp16_goes_to_torch_in_half_precision(monkeypatch, small):
    """faiss has no GPU flat scalar-quantizer index: torch searches it, in fp16."""
    seen = {}
    from_faiss = backends.TorchSearcher.from_faiss.__func__

    def on_cpu(cls, index, *, device, half=False):
        seen["half"] = half
        return from_faiss(cls, index, device="cpu", half=False)

    def no_flat_sq_on_gpu(index, **options):
        raise AssertionError("flat fp16 sent to faiss GPU")

    stub_probes(monkeypatch, gpus=1, smoke=True, cuda=True)
    monkeypatch.setattr(backends.TorchSearcher, "from_faiss", classmethod(on_cpu))
    monkeypatch.setattr(dense_index_module, "to_gpus", no_flat_sq_on_gpu)
    index = built(small, index_type="flat", storage="fp16")
    _, rows = index.search(small[:5], 3)
    assert index.backend == "torch-gpu" and seen["half"] is True
    np.testing.assert_array_equal(rows[:, 0], np.arange(5))


def test_bad_gpu_sharding():
    with pytest.raises(ValueError, match="E120.*'both'"):
        DenseIndex(gpu_sharding="both")


@pytest.mark.parametrize("cuda,expected", [(True, "torch-gpu"), (False, "cpu")])
def test_failed_gpu_copy_falls_back(monkeypatch, caplog, small, cuda, expected):
    def failing_to_gpus(index, *, nprobe=None, **options):
        raise RuntimeError("no kernel image is available")

    stub_probes(monkeypatch, gpus=1, smoke=True, cuda=cuda)
    cpu_torch_searcher(monkeypatch)
    monkeypatch.setattr(dense_index_module, "to_gpus", failing_to_gpus)
    index = built(small, device="auto")
    with caplog.at_level(logging.WARNING, logger="spacy_sapel"):
        index.search(small[:3], 2)
    assert index.backend == expected
    assert any("no kernel image" in r.getMessage() for r in caplog.records)


def test_failed_gpu_copy_with_explicit_faiss_gpu(monkeypatch, small):
    def failing_to_gpus(index, *, nprobe=None, **options):
        raise RuntimeError("no kernel image is available")

    stub_probes(monkeypatch, gpus=1, smoke=True, cuda=True)
    monkeypatch.setattr(dense_index_module, "to_gpus", failing_to_gpus)
    index = built(small, device="faiss-gpu")
    with pytest.raises(ValueError, match="'faiss-gpu' was requested.*no kernel image"):
        index.search(small[:3], 2)


@pytest.mark.parametrize(
    "preference,cuda,expected",
    [("auto", True, "torch-gpu"), ("auto", False, "cpu"), ("gpu", True, "torch-gpu")],
)
def test_hnsw_never_goes_to_faiss_gpu(monkeypatch, small, preference, cuda, expected):
    def no_hnsw_on_gpu(index, *, nprobe=None, **options):
        raise AssertionError("hnsw sent to faiss GPU")

    stub_probes(monkeypatch, gpus=1, smoke=True, cuda=cuda)
    cpu_torch_searcher(monkeypatch)
    monkeypatch.setattr(dense_index_module, "to_gpus", no_hnsw_on_gpu)
    index = built(small, index_type="hnsw", device=preference)
    index.search(small[:3], 2)
    assert index.backend == expected


@pytest.mark.parametrize("preference,cuda", [("faiss-gpu", True), ("gpu", False)])
def test_hnsw_with_unmeetable_gpu_request(monkeypatch, small, preference, cuda):
    stub_probes(monkeypatch, gpus=1, smoke=True, cuda=cuda)
    index = built(small, index_type="hnsw", device=preference)
    with pytest.raises(ValueError, match="no GPU version of the hnsw index"):
        index.search(small[:3], 2)
