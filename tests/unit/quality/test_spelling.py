"""British spellings searched in American spelling as well ("haematuria" finds the
vocabulary's "hematuria"), each concept keeping its better score; can be switched off."""
from __future__ import annotations

import pytest
from sapel_test_utils import doc_with_ents, linker_nlp

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.ranking import best_of
from spacy_sapel.pipeline.spelling import american_spelling


@pytest.mark.parametrize(
    "british,american",
    [
        ("haematuria", "hematuria"),
        ("Oedema", "edema"),
        ("ischaemic heart disease", "ischemic heart disease"),
        ("leukaemia and anaemia", "leukemia and anemia"),
        ("parenchymal tumours", "parenchymal tumors"),
        ("diarrhoea, dyspnoea", "diarrhea, dyspnea"),
        ("paediatric anaesthesia", "pediatric anesthesia"),
        ("leucocytoclastic vasculitis", "leukocytoclastic vasculitis"),
        ("oesophagitis in foetal life", "esophagitis in fetal life"),
    ],
)
def test_british_spellings_become_american(british, american):
    assert american_spelling(british) == american


@pytest.mark.parametrize("text", ["hematuria", "aerobic infection", "leucine", "colonic tumor", "Aedes", "MAEs"])
def test_other_words_are_left_as_they_are(text):
    assert american_spelling(text) == text


def test_best_of_keeps_each_concepts_better_score():
    merged = best_of([("A", 0.5), ("B", 0.9)], [("A", 0.95), ("C", 0.1)])
    assert merged == [("A", 0.95), ("B", 0.9), ("C", 0.1)]


@pytest.fixture(scope="module")
def linker_kb(tiny_bert_dir):
    # mean pooling: the tiny random BERT's CLS vector barely depends on the characters
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, pooling="mean", device="cpu")
    concepts = [
        Concept("D1", "hematuria", types=["Disease"]),
        Concept("D2", "hematoma", types=["Disease"]),
        Concept("D3", "proteinuria", types=["Disease"]),
    ]
    return LinkerKB.build(KnowledgeBase.from_concepts(concepts, name="spelling"), encoder)


def link(linker_kb, **config):
    nlp = linker_nlp(linker_kb, top_k=3, **config)
    return nlp(doc_with_ents(nlp, "Gross haematuria was seen.", [("haematuria", "DISEASE")]))


def test_a_british_mention_finds_the_american_name(linker_kb):
    doc = link(linker_kb)
    (best, score), *_ = doc.ents[0]._.kb_candidates
    assert best == "D1" and score == pytest.approx(1.0, abs=1e-4)  # the name itself
    off = link(linker_kb, spelling_variants=False)
    scores = dict(off.ents[0]._.kb_candidates)
    assert scores.get("D1", 0.0) < 0.999  # only the encoder's guess
    # nothing is lost: every concept scores at least what the mention as written gives
    assert all(dict(doc.ents[0]._.kb_candidates).get(cid, 0.0) >= s - 1e-6 for cid, s in scores.items())
