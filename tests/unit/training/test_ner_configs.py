"""configs/ner*.cfg: each passes `spacy debug config`; the transformer NER trains on
a tiny local BERT, saves and reloads with the same predictions; the full pipeline
(transformer + ner + sapel_linker) finds and links; a missing model directory is a
clear error; the assemble config sources a trained NER next to a linker."""
from __future__ import annotations

from pathlib import Path

import numpy
import pytest
import spacy
from spacy.cli.debug_config import debug_config
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed, load_config, load_model_from_config

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB

CONFIG_DIR = Path(__file__).parents[3] / "configs"
NER_CONFIGS = sorted(CONFIG_DIR.glob("ner*.cfg"))
SENTENCES = [
    ("the patient had a headache and influenza .", [(18, 26, "Disease", "C1"), (31, 40, "Disease", "C2")]),
    ("asthma is chronic .", [(0, 6, "Disease", "C3")]),
    ("no fever , no flu .", [(3, 8, "Disease", "C4"), (14, 17, "Disease", "C2")]),
]


def gold_docs(nlp):
    docs = []
    for text, ents in SENTENCES:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=lab, kb_id=k) for s, e, lab, k in ents]
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("ner_corpus") / "train.spacy"
    DocBin(docs=gold_docs(spacy.blank("en"))).to_disk(path)
    return path


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, tiny_bert_dir):
    concepts = [Concept("C1", "headache"), Concept("C2", "influenza", aliases=["flu"]),
                Concept("C3", "asthma"), Concept("C4", "fever")]
    kb = KnowledgeBase.from_concepts(concepts, name="toy")
    path = tmp_path_factory.mktemp("kb") / "kb"
    LinkerKB.build(kb, SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")).to_disk(path)
    return path


@pytest.fixture(scope="module")
def trained_tok2vec_ner(tmp_path_factory, corpus):
    nlp = nlp_from(CONFIG_DIR / "ner_tok2vec.cfg", {"paths.train": str(corpus), "paths.dev": str(corpus)})
    train(nlp, 30)
    path = tmp_path_factory.mktemp("ner") / "model"
    nlp.to_disk(path)
    return path


def nlp_from(path, overrides):
    config = load_config(path, overrides=overrides, interpolate=True)
    return load_model_from_config(config, auto_fill=True, validate=True)


def train(nlp, steps):
    # the weights' initialisation draws from numpy's (and torch's) global state: seeded,
    # so that a test's losses do not depend on the tests that ran before it
    fix_random_seed(0)
    examples = [Example(nlp.make_doc(d.text), d) for d in gold_docs(nlp)]
    optimizer = nlp.initialize(lambda: examples)
    losses_seen = []
    for _ in range(steps):
        losses = {}
        nlp.update(examples, sgd=optimizer, drop=0.0, losses=losses)
        optimizer.step_schedules()  # as spacy train: the warm-up schedule starts at 0
        losses_seen.append(losses["ner"])
    return losses_seen


@pytest.mark.parametrize("path", NER_CONFIGS, ids=[p.name for p in NER_CONFIGS])
def test_config_passes_debug_config(path, corpus, kb_dir, trained_tok2vec_ner):
    overrides = {"paths.train": str(corpus), "paths.dev": str(corpus)}
    if "linker" in path.name or "vocab" in path.name:
        overrides["paths.kb"] = str(kb_dir)
    if path.name == "ner_linker.cfg":
        overrides["paths.ner_model"] = str(trained_tok2vec_ner)
    debug_config(path, overrides=overrides)  # exits on an invalid config


@pytest.mark.parametrize("name", ["ner_trf.cfg", "ner_trf_chars.cfg"])
def test_transformer_ner_trains_saves_and_reloads(name, tiny_bert_dir, corpus, tmp_path):
    fast = {"training.optimizer.learn_rate.warmup_steps": 1, "training.max_steps": 20,
            "training.optimizer.learn_rate.initial_rate": 0.001}
    nlp = nlp_from(CONFIG_DIR / name, {"paths.transformer": str(tiny_bert_dir), **fast})
    assert nlp.pipe_names == ["transformer", "ner", "sapel_abbreviation_ents"]
    losses = train(nlp, 20)
    assert losses[-1] < 0.8 * losses[0]
    texts = [text for text, _ in SENTENCES]
    before = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "p")
    reloaded = spacy.load(tmp_path / "p")
    after = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in reloaded.pipe(texts)]
    assert before == after


def test_lexical_features_sit_beside_the_transformer_vectors(tiny_bert_dir):
    """configs/ner_trf_chars.cfg: the `ner` reads the transformer's vectors with 64
    lexical columns after them, which see what an uncased transformer does not (case,
    through SHAPE) and leave the transformer's columns as they are."""
    nlp = nlp_from(CONFIG_DIR / "ner_trf_chars.cfg", {"paths.transformer": str(tiny_bert_dir)})
    train(nlp, 2)
    concat = next(node for node in nlp.get_pipe("ner").model.walk()
                  if node._func.__module__ == "thinc.layers.concatenate")
    listener, lexical = concat.layers
    assert listener.name.startswith("transformer-listener") and "hashembed" in lexical.name
    texts = ("no fever , no flu .", "no fever , no FLU .")
    docs = [nlp.get_pipe("transformer")(nlp.make_doc(text)) for text in texts]
    lower, upper = concat.predict(docs)
    hidden = listener.predict(docs[:1])[0].shape[1]
    assert hidden == 32 and lower.shape == (6, hidden + 64)
    numpy.testing.assert_allclose(lower[:, :hidden], listener.predict(docs[:1])[0], rtol=1e-5)
    # the lexical encoder sees one token either side: "no fever ," are out of reach
    assert numpy.allclose(lower[:3, hidden:], upper[:3, hidden:])
    assert not numpy.allclose(lower[4, hidden:], upper[4, hidden:])  # "flu" and "FLU"


def test_missing_transformer_directory_is_a_clear_error(tmp_path):
    nlp = nlp_from(CONFIG_DIR / "ner_trf.cfg", {"paths.transformer": str(tmp_path / "nowhere")})
    examples = [Example(nlp.make_doc(d.text), d) for d in gold_docs(nlp)]
    with pytest.raises(ValueError, match=r"E505.*nowhere"):
        nlp.initialize(lambda: examples)


def test_transformer_without_spacy_transformers_says_which_extra(monkeypatch):
    """spacy-transformers is the ``trf`` extra: without it the name still resolves
    (spaCy imports the entry point's module), and building the model says what to
    install instead of failing on an import deep inside."""
    from spacy.util import registry

    from spacy_sapel import _compat

    monkeypatch.setattr(_compat, "HAS_SPACY_TRANSFORMERS", False)
    create = registry.architectures.get("sapel.LocalTransformerModel.v1")
    with pytest.raises(ImportError, match=r"E509.*sapel.LocalTransformerModel.v1.*spacy-sapel\[trf\]"):
        create(None, get_spans=lambda docs: docs)


def test_full_pipeline_config_finds_and_links(tiny_bert_dir, kb_dir):
    nlp = nlp_from(
        CONFIG_DIR / "ner_linker_trf.cfg",
        {"paths.transformer": str(tiny_bert_dir), "paths.kb": str(kb_dir)},
    )
    assert nlp.pipe_names == ["transformer", "ner", "sapel_abbreviation_ents", "sapel_linker"]
    train(nlp, 2)
    doc = nlp.make_doc("no flu .")
    doc.ents = [doc.char_span(3, 6, label="Disease")]
    assert nlp.get_pipe("sapel_linker")(doc).ents[0].kb_id_ == "C2"
    scores = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in gold_docs(nlp)])
    assert "ents_per_type" in scores and "nel_micro_f" in scores


def test_assemble_config_sources_the_ner_next_to_a_linker(trained_tok2vec_ner, kb_dir, tmp_path):
    nlp = nlp_from(
        CONFIG_DIR / "ner_linker.cfg",
        {"paths.ner_model": str(trained_tok2vec_ner), "paths.kb": str(kb_dir)},
    )
    with nlp.select_pipes(disable=["embed", "ner"]):  # as `spacy assemble`: sourced pipes keep their weights
        nlp.initialize()
    assert nlp.pipe_names == ["embed", "ner", "sapel_abbreviation_ents", "sapel_linker"]
    trained = spacy.load(trained_tok2vec_ner)
    text = SENTENCES[0][0]
    assert [e.text for e in nlp(text).ents] == [e.text for e in trained(text).ents]
    nlp.to_disk(tmp_path / "p")
    doc = spacy.load(tmp_path / "p")(text)
    assert all(e.kb_id_ for e in doc.ents)
