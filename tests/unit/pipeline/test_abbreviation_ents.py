"""sapel_abbreviation_ents: a defined short form takes its long form's entity label
wherever it occurs; entities the ner found elsewhere are kept; the component is
configuration only, so it survives nlp.to_disk / spacy.load."""
from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from thinc.api import ConfigValidationError

from spacy_sapel.errors import SapelError
from spacy_sapel.pipeline import AbbreviationEnts

TEXT = (
    "Effect of butylated hydroxyanisole (BHA) on tumours . In rats given 2 % BHA , "
    "BHA caused hyperplasia ( BHA toxicity ) ."
)


def ruler_nlp(patterns, **config) -> spacy.Language:
    """A blank English pipeline whose entity_ruler stands in for the ner."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    nlp.add_pipe("sapel_abbreviation_ents", config=config)
    return nlp


def ents(doc: Doc):
    return [(e.text, e.label_, e.start) for e in doc.ents]


CHEMICAL = {"label": "Chemical", "pattern": "butylated hydroxyanisole"}


def test_every_occurrence_of_the_short_form_gets_the_long_form_label():
    doc = ruler_nlp([CHEMICAL])(TEXT)
    assert ents(doc) == [
        ("butylated hydroxyanisole", "Chemical", 2),
        ("BHA", "Chemical", 5),
        ("BHA", "Chemical", 15),
        ("BHA", "Chemical", 17),
        ("BHA", "Chemical", 21),
    ]
    assert [(short.text, long.text) for short, long in doc._.sapel_abbreviations] == [("BHA", "butylated hydroxyanisole")]


def test_without_the_component_the_ner_entities_are_all_there_is():
    nlp = ruler_nlp([CHEMICAL])
    with nlp.select_pipes(disable=["sapel_abbreviation_ents"]):
        assert ents(nlp(TEXT)) == [("butylated hydroxyanisole", "Chemical", 2)]


def test_a_short_form_with_another_label_is_relabelled_and_keeps_its_kb_id():
    nlp = spacy.blank("en")
    component = nlp.add_pipe("sapel_abbreviation_ents")
    doc = nlp.make_doc(TEXT)
    doc.ents = [Span(doc, 2, 4, label="Chemical"), Span(doc, 15, 16, label="Disease", kb_id="D1")]
    doc = component(doc)
    labels = {(e.start, e.label_, e.kb_id_) for e in doc.ents}
    assert (15, "Chemical", "D1") in labels
    assert not any(e.label_ == "Disease" for e in doc.ents)


def test_an_occurrence_inside_a_longer_entity_is_left_alone():
    doc = ruler_nlp([CHEMICAL, {"label": "Disease", "pattern": "BHA toxicity"}])(TEXT)
    assert ("BHA toxicity", "Disease", 21) in ents(doc)
    assert ("BHA", "Chemical", 21) not in ents(doc)
    assert [e.start for e in doc.ents if e.text == "BHA"] == [5, 15, 17]


def test_the_long_form_entity_may_be_the_tail_of_the_long_form():
    # the long form of "DA" is "dopamine agonist"; the ner's entity "agonist" ends
    # where the long form ends and starts inside it, so it is the long form's label
    text = "Ropinirole , a dopamine agonist (DA) , was given ; DA doses rose ."
    doc = ruler_nlp([{"label": "Chemical", "pattern": "agonist"}])(text)
    assert [e.text for e in doc.ents if e.label_ == "Chemical"] == ["agonist", "DA", "DA"]


def test_a_long_form_that_is_not_an_entity_changes_nothing():
    nlp = spacy.blank("en")
    component = nlp.add_pipe("sapel_abbreviation_ents")
    doc = nlp.make_doc(TEXT)
    doc.ents = [Span(doc, 15, 16, label="Disease")]
    assert ents(component(doc)) == [("BHA", "Disease", 15)]
    # an entity that ends with the long form but starts before it is another name
    doc = nlp.make_doc(TEXT)
    doc.ents = [Span(doc, 0, 4, label="Disease")]
    assert ents(component(doc)) == [("Effect of butylated hydroxyanisole", "Disease", 0)]


def test_a_word_in_parentheses_is_no_short_form():
    # Schwartz & Hearst's letter matching reads "Keino Enya ( Kenya )" as a definition;
    # a short form needs two upper-case letters before its long form's label is passed on
    text = "Kip Keino Enya ( Kenya ) won . Kenya 's team ; cyclic AMP ( cAMP ) rose , cAMP fell ."
    doc = ruler_nlp([{"label": "PER", "pattern": "Keino Enya"},
                     {"label": "Chemical", "pattern": "cyclic AMP"}])(text)
    assert [(short.text, long.text) for short, long in doc._.sapel_abbreviations] == [("Kenya", "Keino Enya"), ("cAMP", "cyclic AMP")]
    assert [e.text for e in doc.ents if e.label_ == "PER"] == ["Keino Enya"]
    assert [e.text for e in doc.ents if e.label_ == "Chemical"] == ["cyclic AMP", "cAMP", "cAMP"]


def test_labels_limit_which_long_forms_are_passed_on():
    assert ents(ruler_nlp([CHEMICAL], labels=["Disease"])(TEXT)) == [("butylated hydroxyanisole", "Chemical", 2)]
    assert len(ruler_nlp([CHEMICAL], labels=["Chemical"])(TEXT).ents) == 5


def test_the_first_definition_of_a_short_form_decides():
    text = "contrast media (CM) and cardiomyopathy (CM) ; CM ."
    doc = ruler_nlp([{"label": "Chemical", "pattern": "contrast media"},
                     {"label": "Disease", "pattern": "cardiomyopathy"}])(text)
    assert [e.label_ for e in doc.ents if e.text == "CM"] == ["Chemical"] * 3


@pytest.mark.parametrize("labels", ["Disease", [""], [1], None])
def test_bad_labels_name_the_option(labels):
    with pytest.raises(SapelError, match="Option labels of 'abbr'"):
        AbbreviationEnts(spacy.blank("en"), "abbr", labels=labels)


def test_config_is_checked_by_spacy_when_added_by_name():
    with pytest.raises(ConfigValidationError, match="labels"):
        spacy.blank("en").add_pipe("sapel_abbreviation_ents", config={"labels": "Disease"})


def test_saved_with_the_pipeline_and_docs_keep_their_definitions(tmp_path):
    nlp = ruler_nlp([CHEMICAL], labels=["Chemical"])
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["entity_ruler", "sapel_abbreviation_ents"]
    assert loaded.get_pipe("sapel_abbreviation_ents").labels == ("Chemical",)
    docs = list(loaded.pipe([TEXT, "No abbreviations here ."]))
    assert ents(docs[0]) == ents(nlp(TEXT)) and not docs[1].ents
    assert docs[1]._.sapel_abbreviations == []
    # the definitions are token offsets, so they travel with DocBin's user data
    stored = DocBin(store_user_data=True, docs=docs).to_bytes()
    back = list(DocBin().from_bytes(stored).get_docs(loaded.vocab))
    assert [(short.text, long.text) for short, long in back[0]._.sapel_abbreviations] == [("BHA", "butylated hydroxyanisole")]


def test_declared_in_the_pipeline_analysis():
    nlp = ruler_nlp([CHEMICAL])
    analysis = nlp.analyze_pipes()
    assert analysis["problems"]["sapel_abbreviation_ents"] == []
    problems = spacy.blank("en")
    problems.add_pipe("sapel_abbreviation_ents")
    assert problems.analyze_pipes()["problems"]["sapel_abbreviation_ents"] == ["doc.ents"]
