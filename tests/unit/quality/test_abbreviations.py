from __future__ import annotations

import pytest
import spacy

from spacy_sapel.pipeline.abbreviations import (
    best_long_form,
    find_abbreviations,
    implicit_long_forms,
    is_short_form,
    looks_like_abbreviation,
    short_form_map,
    spells,
)

nlp = spacy.blank("en")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Wilson disease (WD) is rare; untreated WD harms.", [("WD", "Wilson disease")]),
        ("We studied hereditary nonpolyposis colorectal cancer (HNPCC) in families.",
         [("HNPCC", "hereditary nonpolyposis colorectal cancer")]),
        ("glucose-6-phosphate dehydrogenase (G6PD) deficiency", [("G6PD", "glucose-6-phosphate dehydrogenase")]),
        ("The WD (Wilson disease) cases.", [("WD", "Wilson disease")]),
        ("Duchenne muscular dystrophy (DMD; OMIM 310200) and Becker muscular dystrophy (BMD).",
         [("DMD", "Duchenne muscular dystrophy"), ("BMD", "Becker muscular dystrophy")]),
    ],
)
def test_definitions_are_found(text, expected):
    assert [(s.text, lf.text) for s, lf in find_abbreviations(nlp(text))] == expected


@pytest.mark.parametrize(
    "text",
    ["Patients (n = 5) had fever (see below).", "(WD)", "Wilson disease (WD", "a (b)", "", "fever (XYZ)"],
)
def test_non_definitions_are_ignored(text):
    assert find_abbreviations(nlp(text)) == []


@pytest.mark.parametrize(
    "text,expected",
    [
        # the tokenizer keeps "ISPH)-induced" as one token: its ")" closes the first
        # parenthesis, which must not reach the ")" of the MI definition
        ("on isoproterenol (ISPH)-induced myocardial infarction (MI) in rats",
         [("MI", "myocardial infarction")]),
        ("doxorubicin (DOX)-related cardiomyopathy (CM), renal failure (RF)",
         [("CM", "cardiomyopathy"), ("RF", "renal failure")]),
        # a "(" before the first ")" opens a nested parenthesis: the scan restarts there
        ("patients (with chronic renal failure (CRF)) were seen", [("CRF", "chronic renal failure")]),
        ("a drug (b cardiomyopathy (CM) in c", [("CM", "cardiomyopathy")]),
        # the outer "(" is not part of the long form
        ("the Atm (ataxia-telangiectasia (AT) -mutated) gene", [("AT", "ataxia-telangiectasia")]),
        # brackets opened and closed inside tokens are balanced, not taken for ends
        ("x (a(b)c) bipolar disorder (BD) here", [("BD", "bipolar disorder")]),
        ("BCNU (1,3-bis-(2-chloroethyl)-1-nitrosourea) was given",
         [("BCNU", "1,3-bis-(2-chloroethyl)-1-nitrosourea")]),
    ],
)
def test_a_parenthesis_ends_at_a_nested_or_glued_one(text, expected):
    assert [(s.text, lf.text) for s, lf in find_abbreviations(nlp(text))] == expected


def test_respects_sentence_boundaries():
    doc = nlp("Wilson disease is rare. (WD) is not defined here.")
    doc[5].is_sent_start = True
    for token in doc[1:5]:
        token.is_sent_start = False
    assert find_abbreviations(doc) == []


def test_best_long_form_and_short_form_rules():
    assert best_long_form("HNPCC", "we saw hereditary nonpolyposis colorectal cancer") == (
        "hereditary nonpolyposis colorectal cancer"
    )
    assert best_long_form("XYZ", "no match here") is None
    assert is_short_form("WD") and is_short_form("X-ALD") and not is_short_form("W")
    assert not is_short_form("12") and not is_short_form("three word thing")


def test_short_form_map_keeps_the_first_definition():
    doc = nlp("Wilson disease (WD) and Wegener disease (WD).")
    assert short_form_map(find_abbreviations(doc)) == {"WD": "Wilson disease"}


@pytest.mark.parametrize("sentences", [False, True])
def test_work_per_parenthesis_is_bounded_in_long_docs(monkeypatch, sentences):
    """A long doc without sentence boundaries (or one long sentence) must not make
    every "(" look at all the text before it: count the tokens examined."""
    from spacy_sapel.pipeline import abbreviations

    examined = []
    definition = abbreviations._definition

    def counting(doc, short, before):
        examined.append(len(before))
        return definition(doc, short, before)

    monkeypatch.setattr(abbreviations, "_definition", counting)
    for n in (20, 200):
        doc = nlp(" ".join(["some words about Wilson disease (WD) and more"] * n))
        if sentences:
            doc[0].is_sent_start = True
            for token in doc[1:]:
                token.is_sent_start = False
        examined.clear()
        found = find_abbreviations(doc)
        assert [(s.text, lf.text) for s, lf in found] == [("WD", "Wilson disease")] * n
        # a bounded number of tokens per parenthesis, however long the doc
        per_paren = abbreviations.MAX_LOOKBACK_TOKENS + abbreviations.MAX_PAREN_TOKENS
        assert sum(examined) <= n * per_paren
        assert max(examined) <= abbreviations.MAX_LOOKBACK_TOKENS


@pytest.mark.parametrize(
    "short,long_text",
    [
        ("HIT", "heparin-induced thrombocytopenia"),
        ("OAB", "overactive bladder"),  # "A" from inside "overactive"
        ("G6PD", "glucose-6-phosphate dehydrogenase"),
        ("TOF", "tetralogy of Fallot"),
        ("EDDs", "excited delirium deaths"),
        ("VSDs", "ventricular septal defects"),
        ("PDs", "pulmonary disease"),
        ("SLE", "(systemic lupus erythematosus"),
        ("DBMD", "Duchenne/Becker muscular dystrophy"),
    ],
)
def test_short_forms_that_spell_a_mention(short, long_text):
    assert looks_like_abbreviation(short)
    assert spells(short, long_text)


@pytest.mark.parametrize(
    "short,long_text",
    [
        ("AD", "adenoma"),  # one word: too easy to spell from inside
        ("HD", "heart"),
        ("CHF", "heart failure"),  # every short-form letter must be used
        ("HF", "chronic heart failure"),  # every word's initial must be used
        ("MI", "infarction myocardial"),  # in order
        ("EDs", "excited delirium syndrome"),  # a plural "s" is not a letter
        ("DMD", "Duchenne/Becker muscular dystrophy"),  # "Becker" is a word of its own
    ],
)
def test_short_forms_that_do_not_spell_a_mention(short, long_text):
    assert not spells(short, long_text)


@pytest.mark.parametrize("text", ["Ui", "flu", "C", "A-B", "HIT 2", "12"])
def test_what_does_not_look_like_an_abbreviation(text):
    assert not looks_like_abbreviation(text)


def test_implicit_long_forms_take_the_first_mention_that_matches():
    texts = ["myocardial ischemia", "MI", "myocardial infarction", "OAB", "Ui", "urinary incontinence", "MI"]
    assert implicit_long_forms(texts) == {"MI": "myocardial ischemia"}
    assert implicit_long_forms(["OAB", "overactive bladder", "OAB"]) == {"OAB": "overactive bladder"}
    assert implicit_long_forms([]) == {}
