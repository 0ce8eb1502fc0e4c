"""Edge and bad inputs through whole pipelines and commands: each gives a clear
result or a clear error (issue 11)."""
from __future__ import annotations

import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB

runner = CliRunner()


@pytest.fixture(scope="module")
def ner_linker_pipeline(tmp_path_factory, tiny_bert_dir):
    """An entity ruler that finds "flu" and a linker, saved."""
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")
    kb = KnowledgeBase.from_concepts([Concept("C1", "influenza", ["flu"]), Concept("C2", "asthma")])
    linker_kb = LinkerKB.build(kb, encoder)
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "DISEASE", "pattern": "flu"}])
    nlp.add_pipe("sapel_linker").set_kb(lambda: linker_kb)
    path = tmp_path_factory.mktemp("robustness") / "pipeline"
    nlp.to_disk(path)
    return path


@pytest.mark.parametrize("text", ["nothing to find here", "the flu again"])
def test_evaluate_ner_on_a_corpus_without_gold_entities(tmp_path, ner_linker_pipeline, text):
    corpus = tmp_path / "gold.jsonl"
    corpus.write_text(json.dumps({"text": text, "ents": []}) + "\n", encoding="utf8")
    out = tmp_path / "scores.json"
    result = runner.invoke(
        app, ["evaluate-ner", str(ner_linker_pipeline), str(corpus), "-o", str(out), "--no-speed"]
    )
    assert result.exit_code == 0, result.output
    assert "no gold entities" in result.output
    scores = json.loads(out.read_text(encoding="utf8"))
    assert scores["gold_ents"] == 0
    assert scores["linking"]["sapel_linker"]["mentions"] == 0
    if "flu" in text:  # a prediction and no gold: precision 0, recall undefined
        assert scores["ner"]["p"] == 0.0 and scores["ner"]["per_type"]["DISEASE"]["p"] == 0.0
    else:
        assert scores["ner"] == {"p": None, "r": None, "f": None, "per_type": {}}
