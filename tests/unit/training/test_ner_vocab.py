"""configs/ner_tok2vec_vocab.cfg (KB-aware NER): the ner with the vocabulary feature
trains (the tag embedding learns from the tags set during the update), saves and
reloads with the same predictions, runs without the vocabulary, and `spacy train`
runs the config as it is."""
from __future__ import annotations

import random
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_config, load_model_from_config

from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline.vocab_tagger import VOCAB_TAGS

CONFIG = Path(__file__).parents[3] / "configs" / "ner_tok2vec_vocab.cfg"
SENTENCES = [
    ("the patient had a headache and influenza .", [(18, 26, "Disease"), (31, 40, "Disease")]),
    ("asthma is chronic .", [(0, 6, "Disease")]),
    ("no fever , no flu .", [(3, 8, "Disease"), (14, 17, "Disease")]),
    ("she took aspirin for the headache .", [(25, 33, "Disease")]),
]
TEXTS = [text for text, _ in SENTENCES] + ["Influenza and Asthma again .", "nothing at all ."]


def gold_docs(nlp):
    docs = []
    for text, ents in SENTENCES:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in ents]
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory):
    concepts = [Concept("C1", "headache"), Concept("C2", "influenza", aliases=["flu"]),
                Concept("C3", "asthma"), Concept("C4", "fever")]
    path = tmp_path_factory.mktemp("vocab_kb") / "kb"
    KnowledgeBase.from_concepts(concepts, name="toy").to_disk(path / "kb")
    return path


def nlp_from(overrides):
    config = load_config(CONFIG, overrides=overrides, interpolate=True)
    return load_model_from_config(config, auto_fill=True, validate=True)


def predictions(nlp, texts=TEXTS):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


@pytest.fixture(scope="module")
def trained(kb_dir):
    """The pipeline after 25 updates as `spacy train` makes them (the tagger annotates
    the predicted docs before the ner learns from them), with the losses and the tag
    embedding before and after."""
    nlp = nlp_from({"paths.kb": str(kb_dir)})
    examples = [Example(nlp.make_doc(d.text), d) for d in gold_docs(nlp)]
    optimizer = nlp.initialize(lambda: examples)
    table = nlp.get_pipe("ner").model.get_ref("tok2vec")
    embed = next(node for node in table.walk() if node.name == "vocab_feature_tok2vec").layers[1]
    before = embed.get_param("E").copy()
    random.seed(0)
    losses_seen = []
    for _ in range(25):
        losses = {}
        for eg in examples:  # fresh predicted docs each step, as the corpus reader gives
            eg.predicted = nlp.make_doc(eg.reference.text)
        nlp.update(examples, sgd=optimizer, drop=0.0, losses=losses,
                   annotates=nlp.config["training"]["annotating_components"])
        losses_seen.append(losses["ner"])
    return nlp, losses_seen, before, embed.get_param("E").copy()


def test_ner_with_the_vocabulary_feature_trains(trained):
    nlp, losses, before, after = trained
    assert nlp.pipe_names == ["tok2vec", "sapel_vocab_tagger", "ner", "sapel_abbreviation_ents"]
    assert losses[-1] < 0.5 * losses[0]
    # the gold entities are vocabulary names: the rows of the tags seen (O, U) learnt;
    # the row of I (no three-token name) only shrank with the weight decay
    learnt = [cosine(a, b) < 0.999 for a, b in zip(before, after)]
    assert [learnt[VOCAB_TAGS.index(t)] for t in ("O", "U", "I")] == [True, True, False]


def cosine(a, b) -> float:
    return float(a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b)))


def test_saved_pipeline_predicts_the_same(trained, tmp_path):
    nlp = trained[0]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert predictions(loaded) == predictions(nlp)
    assert [d._.sapel_vocab_tags for d in loaded.pipe(TEXTS)] == [nlp(t)._.sapel_vocab_tags for t in TEXTS]
    assert predictions(nlp) == predictions(nlp)  # deterministic


def test_pipeline_runs_without_the_vocabulary(trained, tmp_path):
    nlp = trained[0]
    nlp.to_disk(tmp_path / "p")
    # the tagger left out: no doc has tags, the feature reads all O
    without_tagger = spacy.load(tmp_path / "p", exclude=["sapel_vocab_tagger"])
    assert without_tagger.pipe_names == ["tok2vec", "ner", "sapel_abbreviation_ents"]
    docs = list(without_tagger.pipe(TEXTS))
    assert all(doc._.sapel_vocab_tags is None for doc in docs)
    # the tagger without names: all O, the same predictions as without the tagger
    no_names = spacy.load(tmp_path / "p")
    no_names.get_pipe("sapel_vocab_tagger").set_names([])
    assert {tag for doc in no_names.pipe(TEXTS) for tag in doc._.sapel_vocab_tags} == {"O"}
    assert predictions(no_names) == predictions(without_tagger)


def test_spacy_train_runs_the_config(kb_dir, tmp_path):
    corpus = tmp_path / "train.spacy"
    DocBin(docs=gold_docs(spacy.blank("en"))).to_disk(corpus)
    overrides = {"paths.train": str(corpus), "paths.dev": str(corpus), "paths.kb": str(kb_dir),
                 "training.max_steps": 4, "training.eval_frequency": 2}
    spacy_train(CONFIG, tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp("no flu .")._.sapel_vocab_tags == ["O", "U", "O"]


def test_transformer_config_trains_saves_and_runs_without_the_vocabulary(tiny_bert_dir, kb_dir, tmp_path):
    """configs/ner_trf_vocab.cfg: the wrapper around the TransformerListener."""
    config = load_config(CONFIG.parent / "ner_trf_vocab.cfg", interpolate=True, overrides={
        "paths.transformer": str(tiny_bert_dir),
        "paths.kb": str(kb_dir),
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.optimizer.learn_rate.initial_rate": 0.001,
    })
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["transformer", "sapel_vocab_tagger", "ner", "sapel_abbreviation_ents"]
    examples = [Example(nlp.make_doc(d.text), d) for d in gold_docs(nlp)]
    optimizer = nlp.initialize(lambda: examples)
    losses_seen = []
    for _ in range(15):
        losses = {}
        for eg in examples:
            eg.predicted = nlp.make_doc(eg.reference.text)
        nlp.update(examples, sgd=optimizer, drop=0.0, losses=losses,
                   annotates=nlp.config["training"]["annotating_components"])
        optimizer.step_schedules()
        losses_seen.append(losses["ner"])
    assert losses_seen[-1] < 0.8 * losses_seen[0]
    assert nlp("no flu .")._.sapel_vocab_tags == ["O", "U", "O"]
    nlp.to_disk(tmp_path / "p")
    assert predictions(spacy.load(tmp_path / "p")) == predictions(nlp)
    without_tagger = spacy.load(tmp_path / "p", exclude=["sapel_vocab_tagger"])
    assert len(predictions(without_tagger)) == len(TEXTS)
