"""A KB embedded by one encoder runtime and searched with another: accepted when the
runtimes agree on probe names, refused (naming both) when not or when the weights
differ; build-kb --runtime and the pipeline keep the runtime."""
from __future__ import annotations

import json

import pytest
import spacy

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.errors import IndexLoadError
from spacy_sapel.pipeline import LinkerKB

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def int8_kb_dir(tmp_path_factory, tiny_bert_dir, toy_linker_kb):
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", runtime="onnx-int8")
    linker_kb = LinkerKB.build(toy_linker_kb.kb, encoder)
    path = tmp_path_factory.mktemp("kb") / "int8_kb"
    linker_kb.to_disk(path)
    return path


def test_kb_records_the_runtime_that_embedded_it(int8_kb_dir):
    meta = json.loads((int8_kb_dir / "meta.json").read_text())
    assert meta["index"]["fingerprint"].endswith("/onnx-int8")
    assert meta["encoder"]["runtime"] == "onnx-int8"
    loaded = LinkerKB.from_disk(int8_kb_dir)
    assert loaded.encoder.runtime == "onnx-int8"
    assert loaded.search(["heart attack"], top_k=1)[0][0][0] == "C2"


@pytest.mark.parametrize("runtime", ["torch", "torch-int8", "onnx"])
def test_other_runtime_accepted_when_vectors_agree(int8_kb_dir, runtime):
    loaded = LinkerKB.from_disk(int8_kb_dir, runtime=runtime)
    assert loaded.encoder.runtime == runtime
    assert loaded.index.meta["fingerprint"].endswith("/onnx-int8")


def test_other_runtime_refused_when_vectors_disagree(int8_kb_dir, monkeypatch):
    import spacy_sapel.encoder.runtime_check as runtime_check

    # int8 vectors are not bit-equal to float32 ones: a cosine of 1 cannot be met
    monkeypatch.setattr(runtime_check, "MIN_PROBE_COSINE", 1.0 + 1e-9)
    with pytest.raises(IndexLoadError, match="'onnx-int8'.*'torch'"):
        LinkerKB.from_disk(int8_kb_dir, runtime="torch")
    # the same runtime needs no probe
    assert LinkerKB.from_disk(int8_kb_dir).encoder.runtime == "onnx-int8"


def test_other_weights_refused_whatever_the_runtime(int8_kb_dir, other_tiny_bert_dir):
    kb = LinkerKB.from_disk(int8_kb_dir)
    other = SapEncoder.from_pretrained(other_tiny_bert_dir, pooling="cls", runtime="onnx-int8")
    with pytest.raises(IndexLoadError, match="fingerprint"):
        LinkerKB(encoder=other, kb=kb.kb, index=kb.index)


def test_pipeline_keeps_runtime_through_save_and_load(tmp_path, int8_kb_dir):
    from spacy_sapel.pipeline.loaders import create_kb_dir_loader

    nlp = spacy.blank("en")
    linker = nlp.add_pipe("sapel_linker")
    linker.set_kb(create_kb_dir_loader(int8_kb_dir, runtime="torch-int8"))
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp").get_pipe("sapel_linker")
    assert loaded.encoder.runtime == "torch-int8"
    assert loaded.linker_kb.index.meta["fingerprint"].endswith("/onnx-int8")
    reloaded = spacy.blank("en").add_pipe("sapel_linker").from_bytes(loaded.to_bytes())
    assert reloaded.encoder.runtime == "torch-int8"


def test_build_kb_cli_runtime(tmp_path, tiny_bert_dir):
    from typer.testing import CliRunner

    from spacy_sapel.cli import app

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("C1\theadache\nC1\thead ache\nC2\theart attack\n", encoding="utf8")
    out = tmp_path / "kb"
    args = ["build-kb", str(vocab), "-o", str(out), "-e", str(tiny_bert_dir), "--runtime"]
    result = CliRunner().invoke(app, args + ["torch-int8"])
    assert result.exit_code == 0, result.output
    assert LinkerKB.from_disk(out).encoder.runtime == "torch-int8"
    result = CliRunner().invoke(app, args + ["int4"])
    assert result.exit_code != 0 and "int4" in str(result.exception)


def test_encoder_loader_runtime(tiny_bert_dir):
    from spacy.util import registry

    load = registry.misc.get("sapel.encoder.v1")
    encoder = load(name_or_path=str(tiny_bert_dir), runtime="onnx-int8", threads=1)()
    assert (encoder.runtime, encoder.threads, encoder.device) == ("onnx-int8", 1, "cpu")
    with pytest.raises(ValueError, match="'int4'"):
        load(name_or_path=str(tiny_bert_dir), runtime="int4")()
