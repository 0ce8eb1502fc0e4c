"""sapel.BiomedicalTokenizer.v1: finer splits where biomedical corpora put entity
boundaries, nothing lost that spaCy's tokenizer gets right, saved with the pipeline."""
from __future__ import annotations

import pytest
import spacy

import spacy_sapel  # noqa: F401  (registrations)

CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "sapel.BiomedicalTokenizer.v1"}}}
TEXTS = [
    "Butylated hydroxyanisole (BHA)-induced tumours were seen.",
    "Binding of [3H]nicotine and L-[3H]nicotine to thallium-201 scans.",
    "Na+/K+ ATPase and saline+DMSO with (R)-baclofen in Na(v)1.6 channels.",
    "Patients with chronic hepatitis C. Others took vitamin D.",
    "Diazepam- and morphine-induced sedation in the U.S., e.g. in Dr. Smith's trial.",
    "5-FU/LV at 10 mg/kg (n = 12) vs. placebo; IL-6 rose.",
    "Lesions were reduced (5/8) after 1-deamino-8-D-arginine vasopressin :-)",
]


@pytest.fixture(scope="module")
def bio():
    return spacy.blank("en", config=CONFIG)


def boundaries(doc):
    return {t.idx for t in doc} | {t.idx + len(t) for t in doc}


@pytest.mark.parametrize("text,mention", [
    (TEXTS[0], "BHA"), (TEXTS[1], "nicotine"), (TEXTS[1], "thallium"), (TEXTS[2], "Na"),
    (TEXTS[2], "K"), (TEXTS[2], "DMSO"), (TEXTS[2], "baclofen"), (TEXTS[3], "chronic hepatitis C"),
    (TEXTS[3], "vitamin D"), (TEXTS[4], "Diazepam"),
])
def test_mentions_inside_spacys_tokens_become_token_spans(bio, text, mention):
    start = text.index(mention)
    assert spacy.blank("en")(text).char_span(start, start + len(mention)) is None
    span = bio(text).char_span(start, start + len(mention))
    assert span is not None and span.text == mention


@pytest.mark.parametrize("text", TEXTS)
def test_every_boundary_of_spacys_tokenizer_is_kept(bio, text):
    """Only finer: a span that aligned with spaCy's tokens aligns with these."""
    assert boundaries(spacy.blank("en")(text)) <= boundaries(bio(text))


def test_abbreviations_with_full_stops_stay_whole(bio):
    words = [t.text for t in bio(TEXTS[4])]
    assert {"U.S.", "e.g.", "Dr."} <= set(words)
    assert [t.text for t in bio("IL-6 rose.")][-2:] == ["rose", "."]


def test_the_rules_are_saved_with_the_pipeline(bio, tmp_path):
    bio.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.config["nlp"]["tokenizer"]["@tokenizers"] == "sapel.BiomedicalTokenizer.v1"
    for text in TEXTS:
        assert [t.text for t in loaded(text)] == [t.text for t in bio(text)]
    assert loaded.tokenizer.to_bytes() == bio.tokenizer.to_bytes()


def test_other_languages_keep_their_own_rules():
    german = spacy.blank("de", config=CONFIG)
    assert [t.text for t in german("Die Na+/K+-ATPase z.B. im Gewebe.")][:4] == ["Die", "Na", "+", "/"]
    assert "z.B." in [t.text for t in german("Die Na+/K+-ATPase z.B. im Gewebe.")]
