"""Every configs/*.cfg loads, and the linker configs initialize with a KB."""
from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.util import load_config, load_model_from_config

CONFIG_DIR = Path(__file__).parents[3] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.cfg"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    config = load_config(path)
    assert config["nlp"]["pipeline"]


def test_linker_config_assembles_from_kb_dir(toy_kb_dir, tmp_path):
    config = load_config(
        CONFIG_DIR / "linker.cfg",
        overrides={"paths.kb": str(toy_kb_dir)},
        interpolate=False,
    )
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    nlp.initialize()
    doc = nlp.make_doc("flu")
    doc.ents = [doc.char_span(0, 3, label="DISEASE")]
    assert nlp(doc).ents[0].kb_id_ == "C5"
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p")(doc).ents[0].kb_id_ == "C5"


def test_linker_from_vocab_config_builds_at_initialize(tiny_bert_dir, tmp_path):
    vocab = tmp_path / "kb.tsv"
    vocab.write_text("1\theadache\n1\thead pain\n2\tinfluenza\n2\tflu\n", encoding="utf8")
    config = load_config(
        CONFIG_DIR / "linker_from_vocab.cfg",
        overrides={"paths.vocab": str(vocab), "paths.encoder": str(tiny_bert_dir)},
        interpolate=False,
    )
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    nlp.initialize()
    doc = nlp.make_doc("head pain")
    doc.ents = [doc.char_span(0, 9, label="DISEASE")]
    assert nlp(doc).ents[0].kb_id_ == "1"
