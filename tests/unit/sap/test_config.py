"""SAP training configs: the shipped configs resolve once their [paths] are filled,
defaults come from the recipe's signature and the training dataclasses, bad settings
are refused by name, and resume compares configs."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from thinc.api import Config

from spacy_sapel.sap.config import (
    config_changes,
    load_sap_config,
    resolve_sap_config,
    resume_free_keys,
)
from spacy_sapel.sap.recipe import training_config
from spacy_sapel.sap.retrieval import RetrievalConfig
from spacy_sapel.sap.trainer import SapConfig

CONFIG_DIR = Path(__file__).parents[3] / "configs"
SAP_CONFIGS = sorted(CONFIG_DIR.glob("sap*.cfg"))


@pytest.fixture
def inputs(tmp_path, tiny_bert_dir):
    vocab = tmp_path / "kb.tsv"
    vocab.write_text("D1\tflu\nD1\tinfluenza\nD2\tasthma\nD2\tlung asthma\n", encoding="utf8")
    corpus = tmp_path / "train.txt"
    corpus.write_text("1|t|Flu.\n1|a|x\n1\t0\t3\tFlu\tDisease\tD1\n\n", encoding="utf8")
    return {"paths.kb": str(vocab), "paths.corpus": str(corpus), "paths.encoder": str(tiny_bert_dir)}


def test_sap_configs_are_shipped():
    assert [p.name for p in SAP_CONFIGS] == ["sap.cfg", "sap_finetune.cfg"]


@pytest.mark.parametrize(
    "name,objective",
    [("sap.cfg", "sap"), ("sap_finetune.cfg", "sap"), ("sap_finetune.cfg", "retrieval")],
)
def test_sap_config_resolves_and_fills_the_defaults(name, objective, inputs):
    path = CONFIG_DIR / name
    paths = Config().from_disk(path)["paths"]
    overrides = {k: v for k, v in inputs.items() if k.split(".")[1] in paths}
    config = load_sap_config(path, {**overrides, "sap.objective": objective})
    run, filled = resolve_sap_config(config, path=path)
    assert callable(run)
    defaults = RetrievalConfig() if objective == "retrieval" else SapConfig()
    training = filled["sap"]["training"]
    assert set(training) == set(asdict(defaults))
    assert training["seed"] == defaults.seed
    assert training["lr"] == config["sap"]["training"].get("lr", defaults.lr)
    assert filled["sap"]["kb_paths"] == inputs["paths.kb"]
    assert "${" not in filled.to_str()


def test_training_settings_are_checked_by_name_and_type():
    assert training_config("sap", {"lr": 1}).lr == 1.0 and isinstance(training_config("sap", {"lr": 1}).lr, float)
    assert training_config("retrieval", {"n_candidates": 5}).n_candidates == 5
    with pytest.raises(ValueError, match=r"E630.*'lr_rate'.*Expected one of: lr, "):
        training_config("sap", {"lr_rate": 1e-3})
    with pytest.raises(ValueError, match=r"E631.*batch_size=True.*an integer"):
        training_config("sap", {"batch_size": True})
    with pytest.raises(ValueError, match=r"E631.*epochs=1.5.*an integer"):
        training_config("sap", {"epochs": 1.5})
    with pytest.raises(ValueError, match=r"E631.*freeze_embeddings=1.*true or false"):
        training_config("sap", {"freeze_embeddings": 1})
    with pytest.raises(ValueError, match=r"E630.*'batching'.*'retrieval'"):
        training_config("retrieval", {"batching": "hard"})
    with pytest.raises(ValueError, match="E602.*warmup_ratio"):
        training_config("sap", {"warmup_ratio": 1.5})


@pytest.mark.parametrize("name,value", [("grad_accum", 1.5), ("grad_accum", 0), ("epochs", 2.5),
                                        ("checkpoint_every", True), ("max_steps", -1)])
def test_sap_config_made_in_code_refuses_non_integer_counts(name, value):
    """SapConfig made directly (not through a config file) checks its counts as
    RetrievalConfig does: a fractional grad_accum used to be accepted."""
    with pytest.raises(ValueError, match=f"E702.*{name}"):
        SapConfig(**{name: value}).check()
    with pytest.raises(ValueError, match=f"E702.*{name}"):
        RetrievalConfig(**{name: value}).check()


def test_a_config_without_a_sap_block_or_with_a_bad_override_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"E633.*linker.cfg"):
        load_sap_config(CONFIG_DIR / "linker.cfg")
    with pytest.raises(ValueError, match=r"E632.*sap.nothing.here"):
        load_sap_config(CONFIG_DIR / "sap.cfg", {"sap.nothing.here": 1})
    with pytest.raises(ValueError, match=r"E634.*\[paths\] kb.*sap.kb_paths.*--paths.kb"):
        resolve_sap_config(load_sap_config(CONFIG_DIR / "sap.cfg"))


def test_resume_ignores_paths_and_the_resume_free_settings(inputs, tmp_path):
    path = CONFIG_DIR / "sap.cfg"
    raw = load_sap_config(path, inputs)
    _, filled = resolve_sap_config(raw)
    moved = tmp_path / "moved.tsv"
    moved.write_bytes(Path(inputs["paths.kb"]).read_bytes())
    overrides = {**inputs, "paths.kb": str(moved), "sap.training.max_seconds": 60, "sap.training.checkpoint_every": 7}
    raw2 = load_sap_config(path, overrides)
    _, filled2 = resolve_sap_config(raw2)
    ignore = resume_free_keys(raw2, filled2)
    assert {"paths.kb", "sap.kb_paths", "sap.base_encoder", "sap.training.max_seconds"} <= ignore
    assert "sap.training.lr" not in ignore
    assert config_changes(filled, filled2, ignore=ignore) == []
    _, filled3 = resolve_sap_config(load_sap_config(path, {**overrides, "sap.training.seed": 1, "sap.reader": "nemo_pairs"}))
    assert config_changes(filled, filled3, ignore=ignore) == [
        "sap.reader: 'nemo_index' -> 'nemo_pairs'", "sap.training.seed: 42 -> 1"
    ]
