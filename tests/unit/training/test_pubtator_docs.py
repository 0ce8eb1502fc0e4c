"""PubTator -> docs with entities and kb ids: policies for misaligned offsets,
overlaps, unknown types and documents without an abstract; bad input."""
from __future__ import annotations

import warnings

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import registry

from spacy_sapel.training import CorpusReport, pubtator_to_docs

CORPUS = """\
1|t|Cisplatin nephrotoxicity in rats.
1|a|Acute renal failure and renal failure followed.
1\t0\t9\tCisplatin\tChemical\tD002945
1\t10\t24\tnephrotoxicity\tDisease\tD007674
1\t34\t53\tAcute renal failure\tDisease\tD058186|D051437
1\t40\t53\trenal failure\tDisease\tD051437
1\t58\t71\trenal failure\tDisease\t-1
1\tCID\tD002945\tD007674

2|t|Only a title about antiBRCA1 antibodies.
2\t23\t28\tBRCA1\tGene\t672
"""


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS, encoding="utf8")
    return path


def ents(doc):
    return [(e.text, e.label_, e.kb_id_) for e in doc.ents]


def test_entities_keep_kb_ids_and_policies_are_counted(nlp, corpus):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(pubtator_to_docs(nlp, corpus))
    first, second = docs
    assert first.text == "Cisplatin nephrotoxicity in rats. Acute renal failure and renal failure followed."
    assert ents(first) == [
        ("Cisplatin", "Chemical", "D002945"),
        ("nephrotoxicity", "Disease", "D007674"),
        ("Acute renal failure", "Disease", "D058186|D051437"),  # the longest of an overlap
        ("renal failure", "Disease", ""),  # -1: no id (NIL)
    ]
    assert first.user_data["pubtator_pmid"] == "1"
    # 'BRCA1' sits inside the token 'antiBRCA1': the token is split, the mention kept
    assert ents(second) == [("BRCA1", "Gene", "672")]
    messages = " ".join(str(w.message) for w in caught)
    assert "[W501]" in messages and "1 overlapping" in messages
    assert "[W502]" in messages and "'BRCA1' (line 11)" in messages
    assert "[W504]" in messages and "pmid 2" in messages


@pytest.mark.parametrize("policy,expected", [("skip", []), ("expand", [("antiBRCA1", "Gene", "672")])])
def test_misaligned_policies(nlp, corpus, policy, expected):
    report = CorpusReport()
    docs = list(pubtator_to_docs(nlp, corpus, misaligned=policy, report=report))
    assert ents(docs[1]) == expected
    assert report.counts["misaligned"] == 1


def test_misaligned_error_policy(nlp, corpus):
    with pytest.raises(ValueError, match=r"E501.*line 11.*'BRCA1'"):
        list(pubtator_to_docs(nlp, corpus, misaligned="error"))
    with pytest.raises(ValueError, match="E506"):
        list(pubtator_to_docs(nlp, corpus, misaligned="drop"))


def test_label_map_skips_and_counts_unknown_types(nlp, corpus):
    with pytest.warns(UserWarning, match=r"W503.*1 mention.*\['Gene'\]"):
        docs = list(pubtator_to_docs(nlp, corpus, label_map={"Chemical": "CHEM", "Disease": "DIS"}))
    assert [e.label_ for e in docs[0].ents] == ["CHEM", "DIS", "DIS", "DIS"]
    assert ents(docs[1]) == []


def test_bad_input(nlp, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"E502.*holds no PubTator documents"):
        list(pubtator_to_docs(nlp, empty))
    outside = tmp_path / "outside.txt"
    outside.write_text("9|t|Short.\n9\t0\t40\tShort\tDisease\tD1\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"E504.*line 2.*outside the document text"):
        list(pubtator_to_docs(nlp, outside))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("9|t|Short text.\n9\t0\t5\tLong\tDisease\tD1\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"E504.*reads 'Short'.*'Long'"):
        list(pubtator_to_docs(nlp, wrong))


def test_registered_reader_and_docbin_round_trip(nlp, corpus, tmp_path):
    reader = registry.readers.get("sapel.pubtator_corpus.v1")(corpus, limit=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples = list(reader(nlp))
    assert len(examples) == 1
    assert examples[0].reference.ents[2].kb_id_ == "D058186|D051437"
    db = DocBin(store_user_data=True, docs=[examples[0].reference])
    db.to_disk(tmp_path / "c.spacy")
    doc = next(DocBin().from_disk(tmp_path / "c.spacy").get_docs(nlp.vocab))
    assert ents(doc) == ents(examples[0].reference)
    assert doc.user_data["pubtator_pmid"] == "1"
