"""NER per type, joint NER + linking, and gold-mention linking scores."""
from __future__ import annotations

import pytest
import spacy

from spacy_sapel.kb.ids import kb_id_set
from spacy_sapel.training import score_joint, score_ner


@pytest.fixture
def nlp():
    return spacy.blank("en")


def make(nlp, text, ents):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(s, e, label=lab, kb_id=k) for s, e, lab, k in ents]
    return doc


TEXT = "Aspirin caused acute renal failure and headache."


def test_gold_ids_split_and_normalise():
    assert kb_id_set("MESH:D1|OMIM:2+D3") == {"D1", "OMIM:2", "D3"}
    assert kb_id_set("-1") == frozenset() and kb_id_set("") == frozenset()


def test_score_ner_per_type(nlp):
    gold = make(nlp, TEXT, [(0, 7, "Chemical", "D1"), (15, 34, "Disease", "D2"), (39, 47, "Disease", "D3")])
    pred = make(nlp, TEXT, [(0, 7, "Chemical", ""), (21, 34, "Disease", ""), (39, 47, "Disease", "")])
    scores = score_ner([pred], [gold])
    assert scores["p"] == pytest.approx(2 / 3) and scores["r"] == pytest.approx(2 / 3)
    assert scores["per_type"]["Chemical"]["f"] == 1.0
    assert scores["per_type"]["Disease"]["p"] == 0.5


def test_score_joint_needs_span_label_and_id(nlp):
    gold = make(nlp, TEXT, [(0, 7, "Chemical", "D1"), (15, 34, "Disease", "MESH:D2|D9"), (39, 47, "Disease", "")])
    pred = make(nlp, TEXT, [(0, 7, "Chemical", "D7"), (15, 34, "Disease", "D9"), (39, 47, "Disease", "D3")])
    scores = score_joint([pred], [gold])
    # 'headache' has no gold id: neither a gold nor a predicted item
    assert scores["p"] == 0.5 and scores["r"] == 0.5
    assert scores["per_type"]["Disease"] == {"p": 1.0, "r": 1.0, "f": 1.0}
    assert scores["per_type"]["Chemical"]["f"] == 0.0


def test_score_joint_only_counts_linked_labels(nlp):
    gold = make(nlp, TEXT, [(0, 7, "Chemical", "D1"), (15, 34, "Disease", "D2")])
    pred = make(nlp, TEXT, [(0, 7, "Chemical", ""), (15, 34, "Disease", "D2")])
    assert score_joint([pred], [gold], labels={"Disease"})["f"] == 1.0
    assert score_joint([pred], [gold])["f"] == 0.5


def test_a_corpus_without_whitespace_is_scored_on_its_own_tokens(nlp, tmp_path):
    """A doc converted from IOB/CoNLL has unknown whitespace: spaCy's training
    evaluation runs the pipeline on its words, and so must evaluate-ner (retokenizing
    its text splits "York-based" and the entity is lost)."""
    from spacy.tokens import Doc, DocBin
    from spacy.training import Corpus

    from spacy_sapel.training import evaluate_pipeline

    gold = Doc(nlp.vocab, words=["Two", "York-based", "firms"], ents=["O", "B-MISC", "O"])
    assert gold.has_unknown_spaces
    assert len(nlp.make_doc(gold.text)) != len(gold)
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "MISC", "pattern": [{"ORTH": "York-based"}]}])
    scores = evaluate_pipeline(nlp, [gold], speed=True)
    assert scores["ner"]["f"] == 1.0
    assert scores["speed"]["words_per_second"] > 0
    # as spaCy's own evaluation of the same corpus file scores it
    DocBin(docs=[gold]).to_disk(tmp_path / "dev.spacy")
    examples = list(Corpus(tmp_path / "dev.spacy")(nlp))
    assert nlp.evaluate(examples)["ents_f"] == scores["ner"]["f"]
