"""Device and precision choice, with the CUDA probe stubbed (no GPU is touched)."""
from __future__ import annotations

import warnings

import pytest
import torch

from spacy_sapel.encoder import SapEncoder, sap_encoder
from spacy_sapel.encoder.sap_encoder import select_device


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(sap_encoder, "cuda_available", lambda: True)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(sap_encoder, "cuda_available", lambda: False)


@pytest.mark.parametrize(
    "device,fp16,expected",
    [
        ("auto", None, ("cuda", True)),
        ("auto", False, ("cuda", False)),
        ("cuda:1", None, ("cuda:1", True)),
        ("cpu", None, ("cpu", False)),
    ],
)
def test_with_gpu(gpu, device, fp16, expected):
    assert select_device(device, fp16) == expected


def test_without_gpu_auto_is_cpu_float32(no_gpu):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_device("auto", None) == ("cpu", False)


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_fp16_is_never_used_on_cpu(no_gpu, device):
    with pytest.warns(UserWarning, match="W201"):
        assert select_device(device, True) == ("cpu", False)


def test_cuda_requested_without_gpu(no_gpu):
    with pytest.raises(ValueError, match="no usable CUDA"):
        select_device("cuda", None)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", None])
def test_bad_device_string(device):
    with pytest.raises(ValueError, match="Invalid device"):
        select_device(device, None)


def test_encoder_on_cpu_ignores_fp16(no_gpu, tiny_bert_dir):
    with pytest.warns(UserWarning, match="W201"):
        encoder = SapEncoder.from_pretrained(tiny_bert_dir, fp16=True)
    assert (encoder.device, encoder.fp16) == ("cpu", False)
    assert next(encoder.model.parameters()).dtype == torch.float32
