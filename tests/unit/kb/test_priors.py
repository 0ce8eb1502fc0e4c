"""KB priors from labelled mentions: counts, name kinds, serialization, old formats."""
from __future__ import annotations

import pytest
import srsly

from spacy_sapel.errors import KBReadError
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.training.mentions import add_mention_aliases, add_mention_priors

CONCEPTS = [
    Concept("D1", "Muscular dystrophy", ["MD"]),
    Concept("OMIM:2", "Muscular dystrophy type 2", ["MD"]),
    Concept("D3", "Myotonic dystrophy"),
]
CORPUS = """\
1|t|Myotonic dystrophy (MD) and MD.
1|a|Text.
1\t0\t18\tMyotonic dystrophy\tDisease\tD3
1\t20\t22\tMD\tDisease\tD3
1\t28\t30\tMD\tDisease\tD3
1\t0\t2\tXY\tDisease\tD999
1\t0\t2\tAB\tDisease\tD1|D3

2|t|MD again.
2|a|Text.
2\t0\t2\tMD\tDisease\tOMIM:2
"""


@pytest.fixture
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_concepts(CONCEPTS, name="priors_kb")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CORPUS, encoding="utf8")
    return path


def test_counts_and_skipped_mentions_are_reported(kb, corpus):
    counted, skipped = add_mention_priors(kb, corpus)
    assert counted == 6  # the composite mention counts for both its ids
    assert skipped == {"id not in the KB": 1}
    assert kb.priors.mention_count("md", "D3") == 2
    assert kb.priors.mention_count("MD", "OMIM:2") == 1
    assert kb.priors.mention_count("ab", "D1") == kb.priors.mention_count("ab", "D3") == 1
    assert kb.priors.mention_prior("Md", "D3") == pytest.approx(2 / 3)
    assert kb.priors.concept_count("D3") == 4 and kb.priors.concept_count("D1") == 1
    assert kb.meta["priors"]["n_mentions"] == 6


def test_priors_are_visible_on_concepts(kb, corpus):
    add_mention_priors(kb, corpus)
    concept = kb["D3"]
    assert concept.gold_count == 4
    assert concept.mention_counts == {"myotonic dystrophy": 1, "md": 2, "ab": 1}
    assert kb["OMIM:2"].gold_count == 1


def test_add_priors_refuses_unknown_ids(kb):
    with pytest.raises(KeyError, match="E008.*D999"):
        kb.add_priors([("x", "D999")], source="test")


def test_name_kinds(kb, corpus):
    kb.add_aliases("D3", ["DM1"], source="train")
    assert kb.name_kind(kb["D3"], "myotonic  Dystrophy") == "canonical"
    assert kb.name_kind(kb["D1"], "md") == "synonym"
    assert kb.name_kind(kb["D3"], "dm1") == "alias"
    assert kb.name_kind(kb["D3"], "md") is None


def test_name_kinds_of_all_names_at_once(kb):
    # an alias that differs from a vocabulary name only in case is not a new name
    kb.add_aliases("D1", ["Becker dystrophy", "md", "BMD"], source="train")
    assert kb.name_kinds(kb["D1"]) == {
        "muscular dystrophy": "canonical",
        "md": "synonym",
        "becker dystrophy": "alias",
        "bmd": "alias",
    }
    assert kb.name_kinds(kb["D3"]) == {"myotonic dystrophy": "canonical"}


@pytest.mark.parametrize("via", ["disk", "bytes"])
def test_priors_round_trip(kb, corpus, tmp_path, via):
    add_mention_aliases(kb, corpus)
    add_mention_priors(kb, corpus)
    if via == "disk":
        kb.to_disk(tmp_path / "kb")
        loaded = KnowledgeBase.from_disk(tmp_path / "kb")
    else:
        loaded = KnowledgeBase.from_bytes(kb.to_bytes())
    assert loaded.priors.to_dict() == kb.priors.to_dict()
    assert loaded["D3"] == kb["D3"]
    assert loaded.name_kind(loaded["D3"], "myotonic dystrophy") == "canonical"


def test_format_version_2_loads_without_priors(kb, corpus, tmp_path):
    """A KB directory as written before priors (format 2: no priors.json)."""
    add_mention_priors(kb, corpus)
    kb.to_disk(tmp_path / "kb")
    (tmp_path / "kb" / "priors.json").unlink()
    meta = srsly.read_json(tmp_path / "kb" / "meta.json")
    meta.pop("priors")
    srsly.write_json(tmp_path / "kb" / "meta.json", {**meta, "format_version": 2})
    loaded = KnowledgeBase.from_disk(tmp_path / "kb")
    assert not loaded.priors and loaded["D3"].gold_count == 0
    assert [c.names() for c in loaded] == [c.names() for c in kb]
    assert loaded.meta["format_version"] == 3


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"mention_counts": {"md": {"D3": -1}}, "concept_counts": {}, "n_mentions": 1}, "positive"),
        ({"mention_counts": {}, "concept_counts": {"D999": 1}, "n_mentions": 1}, "D999"),
        ({"concept_counts": {}}, "mention_counts"),
    ],
)
def test_corrupt_priors_file(kb, tmp_path, data, problem):
    kb.to_disk(tmp_path / "kb")
    srsly.write_json(tmp_path / "kb" / "priors.json", data)
    with pytest.raises(KBReadError, match=f"E006.*priors.json.*{problem}"):
        KnowledgeBase.from_disk(tmp_path / "kb")
