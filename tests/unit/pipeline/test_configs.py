"""Every pipeline config in configs/ loads, and the linker configs initialize with a
KB (the SAP training configs, configs/sap*.cfg, are tested in tests/unit/sap)."""
from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.util import load_config, load_model_from_config

CONFIG_DIR = Path(__file__).parents[3] / "configs"
CONFIGS = sorted(set(CONFIG_DIR.glob("*.cfg")) - set(CONFIG_DIR.glob("sap*.cfg")))


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


@pytest.fixture(scope="module")
def debug_inputs(tmp_path_factory, toy_kb_dir, tiny_bert_dir):
    """Paths that every config's overrides can point at: a one-doc corpus, the toy KB
    directory, a vocabulary, the tiny BERT and a small trained-shape NER pipeline."""
    from spacy.tokens import DocBin

    root = tmp_path_factory.mktemp("debug_config")
    nlp = spacy.blank("en")
    doc = nlp.make_doc("flu and asthma")
    doc.ents = [doc.char_span(0, 3, label="DISEASE")]
    DocBin(docs=[doc]).to_disk(root / "c.spacy")
    vocab = root / "kb.tsv"
    vocab.write_text("1\tinfluenza\n1\tflu\n", encoding="utf8")
    ner = spacy.blank("en")
    ner.add_pipe("tok2vec")
    ner.add_pipe("ner").add_label("DISEASE")
    ner.initialize()
    ner.to_disk(root / "ner")
    corpus = {"paths.train": str(root / "c.spacy"), "paths.dev": str(root / "c.spacy")}
    return {
        "linker.cfg": {**corpus, "paths.kb": str(toy_kb_dir)},
        "linker_from_vocab.cfg": {**corpus, "paths.vocab": str(vocab), "paths.encoder": str(tiny_bert_dir)},
        "ner_tok2vec.cfg": corpus,
        "ner_tok2vec_vocab.cfg": {**corpus, "paths.kb": str(toy_kb_dir)},
        "ner_trf.cfg": {**corpus, "paths.transformer": str(tiny_bert_dir)},
        "ner_trf_chars.cfg": {**corpus, "paths.transformer": str(tiny_bert_dir)},
        "ner_trf_vocab.cfg": {**corpus, "paths.transformer": str(tiny_bert_dir), "paths.kb": str(toy_kb_dir)},
        "ner_linker.cfg": {**corpus, "paths.kb": str(toy_kb_dir), "paths.ner_model": str(root / "ner")},
        "ner_linker_trf.cfg": {**corpus, "paths.kb": str(toy_kb_dir), "paths.transformer": str(tiny_bert_dir)},
    }


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_passes_spacy_debug_config(path, debug_inputs):
    """What `python -m spacy debug config CONFIG --paths.x ...` checks: the config
    validates, and its [initialize] and [training] blocks resolve."""
    from spacy.cli.debug_config import debug_config

    assert path.name in debug_inputs, f"add the overrides of {path.name} to debug_inputs"
    debug_config(path, overrides=debug_inputs[path.name])  # exits non-zero on an error


# configs that are another config plus one feature, and the only sections they change
_VOCAB_FEATURE = ["nlp.pipeline", "paths.kb", "training.annotating_components", "components.ner.model.tok2vec",
                  "components.sapel_vocab_tagger", "initialize.components"]
FEATURE_CONFIGS = {
    "ner_trf_chars.cfg": ("ner_trf.cfg", ["components.ner.model.tok2vec"]),
    "ner_trf_vocab.cfg": ("ner_trf.cfg", _VOCAB_FEATURE),
    "ner_tok2vec_vocab.cfg": ("ner_tok2vec.cfg", _VOCAB_FEATURE),
}


def _flat(section, prefix=""):
    out = {}
    for key, value in section.items():
        name = f"{prefix}.{key}" if prefix else key
        out.update(_flat(value, name) if isinstance(value, dict) and value else {name: value})
    return out


@pytest.mark.parametrize("name", sorted(FEATURE_CONFIGS))
def test_feature_config_differs_from_its_base_only_in_its_feature(name):
    """The feature configs are full copies (spaCy configs cannot include one another):
    a change to the base config's training or transformer must reach them too."""
    base_name, allowed = FEATURE_CONFIGS[name]
    base = _flat(load_config(CONFIG_DIR / base_name, interpolate=False))
    variant = _flat(load_config(CONFIG_DIR / name, interpolate=False))
    changed = [key for key in sorted(base.keys() | variant.keys())
               if base.get(key, "<absent>") != variant.get(key, "<absent>")]
    assert changed, f"{name} is {base_name}"
    drifted = [key for key in changed if not any(key == a or key.startswith(a + ".") for a in allowed)]
    assert not drifted, f"{name} differs from {base_name} outside its feature: {drifted}"
