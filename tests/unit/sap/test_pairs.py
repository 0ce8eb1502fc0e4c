"""SAP training pairs: caps, dedup, shuffling, NeMo TSV, corpus pairs and aliases."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from spacy_sapel.errors import InputFileError
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.sap.pairs import (
    kb_pairs,
    mention_pairs,
    read_pairs_tsv,
    split_validation,
    synonym_queries,
    warn_skipped,
)
from spacy_sapel.training.mentions import add_mention_aliases

PUBTATOR = """1|t|Headache and flu.
1|a|The flu came with a head ache.
1\t0\t8\tHeadache\tDisease\tD1
1\t13\t16\tflu\tDisease\tD2
1\t31\t40\thead ache\tDisease\tD1
1\t20\t23\tflu\tDisease\tD2|D1

2|t|Migraine in the head
2|a|Kidney failure and flu
2\t0\t8\tMigraine\tDisease\tD1
2\t21\t35\tKidney failure\tDisease\tD9
2\t40\t43\tpain\tDisease\tD2
2\t44\t48\tpain\tDisease\tD3

"""


def toy_kb() -> KnowledgeBase:
    return KnowledgeBase.from_concepts(
        [
            Concept("D1", "headache", ["Headache", "head pain", "cephalalgia"]),
            Concept("D2", "influenza", ["flu", "FLU", "grippe"]),
            Concept("D3", "asthma"),
            Concept("D4", "big", [f"name {i}" for i in range(20)]),
        ]
    )


def test_kb_pairs_dedup_cap_and_count_single_names():
    pairs = kb_pairs(toy_kb(), max_pairs_per_concept=50, seed=0)
    counts = Counter(p.label for p in pairs.pairs)
    # "Headache" and "FLU" are case duplicates: 3 names -> 3 pairs each
    assert counts["D1"] == 3 and counts["D2"] == 3
    assert counts["D4"] == 50  # 21 names = 210 pairs, capped
    assert "D3" not in counts and pairs.n_single_name == 1
    for p in pairs.pairs:
        assert p.left.casefold() != p.right.casefold()
    assert len({(p.label, p.left, p.right) for p in pairs.pairs}) == len(pairs)


def test_synonym_queries_come_from_concepts_with_other_names_seeded():
    kb = toy_kb()
    every = synonym_queries(kb, 1000, seed=0)
    # 3 + 3 distinct names of D1 and D2, 21 of D4; the single-name D3 gives none
    assert len(every) == 27 and len(set(every)) == 27
    assert Counter(cid for _, cid in every) == {"D1": 3, "D2": 3, "D4": 21}
    assert ("asthma", "D3") not in every and ("FLU", "D2") not in every  # case duplicate
    some = synonym_queries(kb, 5, seed=1)
    assert len(some) == 5 and set(some) <= set(every)
    assert some == synonym_queries(kb, 5, seed=1) and some != synonym_queries(kb, 5, seed=2)
    assert synonym_queries(kb, 0) == []
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="E702.*synonym_queries"):
            synonym_queries(kb, bad)


def test_kb_pairs_are_seeded_and_shuffled():
    a = kb_pairs(toy_kb(), seed=1).pairs
    assert a == kb_pairs(toy_kb(), seed=1).pairs
    assert a != kb_pairs(toy_kb(), seed=2).pairs
    labels = [p.label for p in a]
    assert labels != sorted(labels)


def test_single_names_warn():
    with pytest.warns(UserWarning, match="W600"):
        warn_skipped(kb_pairs(toy_kb()))


def test_kb_of_single_names_is_an_error():
    kb = KnowledgeBase.from_concepts([Concept("1", "a"), Concept("2", "b")])
    with pytest.raises(ValueError, match="E601"):
        kb_pairs(kb)


def test_single_concept_is_an_error():
    kb = KnowledgeBase.from_concepts([Concept("1", "a", ["b", "c"])])
    with pytest.raises(ValueError, match="E603"):
        kb_pairs(kb)


def test_read_pairs_tsv(tmp_path: Path):
    path = tmp_path / "pairs.tsv"
    path.write_text("1\tflu\tinfluenza\n1\tFLU\tflu\n1\tinfluenza\tflu\n2\ta\tb\n\n", encoding="utf8")
    pairs = read_pairs_tsv(path)
    assert sorted((p.label, p.left, p.right) for p in pairs.pairs) == [
        ("1", "flu", "influenza"),
        ("2", "a", "b"),
    ]
    assert pairs.skipped == {"same name twice": 1}


def test_pairs_tsv_with_one_column_names_the_line(tmp_path: Path):
    path = tmp_path / "pairs.tsv"
    path.write_text("1\tflu\tinfluenza\nflu only\n", encoding="utf8")
    with pytest.raises(InputFileError, match=r"E002.*line 2.*1 field"):
        read_pairs_tsv(path)


def test_empty_pairs_tsv(tmp_path: Path):
    path = tmp_path / "pairs.tsv"
    path.write_text("\n", encoding="utf8")
    with pytest.raises(ValueError, match="E601"):
        read_pairs_tsv(path)


def test_mention_pairs_and_aliases(tmp_path: Path):
    corpus = tmp_path / "train.txt"
    corpus.write_text(PUBTATOR, encoding="utf8")
    kb = toy_kb()
    pairs = mention_pairs(corpus, kb, max_pairs_per_concept=50)
    got = {(p.label, p.left, p.right) for p in pairs.pairs}
    assert ("D1", "head ache", "cephalalgia") in got
    assert ("D2", "flu", "influenza") in got
    assert not any(p.left.casefold() == p.right.casefold() for p in pairs.pairs)
    assert pairs.skipped == {"composite or no id": 1, "id not in the KB": 1}

    added = add_mention_aliases(kb, corpus)
    names = kb["D1"].names()
    assert "head ache" in names and "Migraine" in names
    # "pain" is linked to two concepts: ambiguous, not added anywhere
    assert not any("pain" == n for c in kb for n in c.names())
    assert added == 2
    assert kb.meta["alias_sources"][f"train_mentions:{corpus}"] == 2


def test_split_validation_holds_out_whole_concepts():
    pairs = kb_pairs(toy_kb())
    train, val = split_validation(pairs, fraction=0.34, seed=0)
    assert len(train) + len(val) == len(pairs)
    assert set(train.labels).isdisjoint(val.labels) and len(val.labels) == 1
