from __future__ import annotations

from pathlib import Path

import pytest

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB

TOY_CONCEPTS = [
    Concept("C1", "headache", aliases=["head ache", "cephalalgia", "head pain"], types=["Disease"]),
    Concept("C2", "myocardial infarction", aliases=["heart attack", "MI"], types=["Disease"]),
    Concept("C3", "chronic kidney disease", aliases=["chronic kidney failure", "CKD"], types=["Disease"]),
    Concept("C4", "diabetes", aliases=["high blood sugar"], types=["Disease"]),
    Concept("C5", "influenza", aliases=["flu"], types=["Disease"]),
    Concept("C6", "asthma", types=["Disease"]),
]
DRUG_CONCEPTS = [
    Concept("X1", "aspirin", aliases=["acetylsalicylic acid"], types=["Chemical"]),
    Concept("X2", "insulin", types=["Chemical"]),
]


@pytest.fixture(scope="session")
def tiny_encoder(tiny_bert_dir) -> SapEncoder:
    return SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")


@pytest.fixture(scope="session")
def toy_linker_kb(tiny_encoder) -> LinkerKB:
    kb = KnowledgeBase.from_concepts(TOY_CONCEPTS, name="toy")
    return LinkerKB.build(kb, tiny_encoder)


@pytest.fixture(scope="session")
def drug_linker_kb(tiny_encoder) -> LinkerKB:
    kb = KnowledgeBase.from_concepts(DRUG_CONCEPTS, name="drugs")
    return LinkerKB.build(kb, tiny_encoder)


@pytest.fixture(scope="session")
def toy_kb_dir(tmp_path_factory, toy_linker_kb) -> Path:
    path = tmp_path_factory.mktemp("kb") / "toy_kb"
    toy_linker_kb.to_disk(path)
    return path
