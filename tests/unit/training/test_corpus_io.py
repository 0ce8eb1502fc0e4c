from __future__ import annotations

import json

import pytest
import spacy

from spacy_sapel.errors import InputFileError
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.kb.ids import split_ids
from spacy_sapel.training import (
    accuracy_at_k,
    gold_id_set,
    read_jsonl_docs,
    read_pubtator,
    read_text_docs,
)

PUBTATOR = """\
111|t|Wilson disease and cancer.
111|a|Wilson disease (WD) is rare.
111\t0\t14\tWilson disease\tDisease\tD006527
111\t19\t25\tcancer\tDisease\tMESH:D009369|OMIM:114480
111\t27\t41\tWilson disease\tDisease\t-1
111\tCID\tD001\tD002

222|t|Only a title here.
222\t7\t12\ttitle\tChemical\tC1+C2\tpart one|part two
"""


def test_read_pubtator(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(PUBTATOR, encoding="utf8")
    docs = list(read_pubtator(path))
    assert [d.pmid for d in docs] == ["111", "222"]
    first, second = docs
    assert first.text == "Wilson disease and cancer. Wilson disease (WD) is rare."
    assert [m.text for m in first.mentions] == ["Wilson disease", "cancer", "Wilson disease"]
    assert all(first.text[m.start:m.end] == m.text for m in first.mentions)
    assert gold_id_set(first.mentions[1]) == {"D009369", "OMIM:114480"}
    assert first.mentions[2].ids == []  # -1 means no id
    assert second.abstract == "" and second.text == "Only a title here."
    assert second.mentions[0].ids == ["C1", "C2"]
    assert [m.type for m in read_pubtator(path, types=["Chemical"]).__next__().mentions] == []


def test_split_ids():
    assert split_ids("D1|D2+D3") == ["D1", "D2", "D3"]
    assert split_ids("-1") == []


@pytest.mark.parametrize(
    "text,problem",
    [
        ("111|t|T\n111\tx\t4\tT\tDisease\tD1\n", "offsets"),
        ("111|t|T\n999\t0\t1\tT\tDisease\tD1\n", "not a title, abstract or mention line"),
        ("stray line\n", "not a title, abstract or mention line"),
    ],
)
def test_bad_pubtator_lines_name_file_and_line(tmp_path, text, problem):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf8")
    number = text.count("\n")
    bad_line = text.split("\n")[number - 1]
    with pytest.raises(InputFileError, match=rf"E002.*bad.txt, line {number}: {problem}") as err:
        list(read_pubtator(path))
    assert str(err.value).endswith(f"The line reads: {bad_line!r}")


def test_missing_corpus(tmp_path):
    with pytest.raises(ValueError, match="nope.txt"):
        list(read_pubtator(tmp_path / "nope.txt"))


def test_accuracy_at_k_uses_alternate_ids_and_distinct_concepts():
    kb = KnowledgeBase.from_concepts(
        [Concept("D1", "a", alt_ids=["OMIM:1"]), Concept("D2", "b"), Concept("D3", "c")]
    )
    candidates = [
        [("D1", 0.9), ("D2", 0.8)],   # right at 1
        [("D2", 0.9), ("D1", 0.8)],   # right at 2 via the alternate id
        [("D3", 0.9)],                # wrong
        [],                           # nothing found
    ]
    gold = [frozenset({"D1"}), frozenset({"OMIM:1"}), frozenset({"D1", "D2"}), frozenset({"D1"})]
    assert accuracy_at_k(candidates, gold, kb, ks=(1, 5)) == {1: 0.25, 5: 0.5}


def test_read_jsonl_docs(tmp_path):
    nlp = spacy.blank("en")
    path = tmp_path / "docs.jsonl"
    records = [
        {"text": "Wilson disease here", "ents": [{"start": 0, "end": 14, "label": "DISEASE", "kb_id": "D1"}]},
        {"text": "no ents given"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf8")
    (doc, has), (doc2, has2) = read_jsonl_docs(nlp, path)
    assert has and not has2
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [("Wilson disease", "DISEASE", "D1")]


@pytest.mark.parametrize(
    "line,match",
    [
        ("not json", "invalid JSON"),
        ('{"txt": "x"}', "no string field 'text'"),
        ('{"text": "abc", "ents": [{"start": 0, "end": 2}]}', "lacks start, end or label"),
        ('{"text": "abc def", "ents": [{"start": 1, "end": 5, "label": "X"}]}', "does not align"),
        ('{"text": "abc def", "ents": [{"start": 0, "end": 7, "label": "X"}, {"start": 4, "end": 7, "label": "Y"}]}', "overlapping"),
        ('{"text": "abc def", "ents": [{"start": "0", "end": 3, "label": "X"}]}', "offsets '0':3.*integer"),
        ('{"text": "abc def", "ents": [{"start": 0, "end": 3.0, "label": "X"}]}', "offsets 0:3.0"),
        ('{"text": "abc def", "ents": [{"start": 4, "end": 99, "label": "X"}]}', "offsets 4:99.*<= 7"),
        ('{"text": "abc def", "ents": [{"start": 3, "end": 3, "label": "X"}]}', "offsets 3:3"),
        ('{"text": "abc def", "ents": [{"start": true, "end": 3, "label": "X"}]}', "offsets True:3"),
        ('{"text": "abc def", "ents": [{"start": 0, "end": 3, "label": 5}]}', "label 5.*non-empty string"),
        ('{"text": "abc def", "ents": [{"start": 0, "end": 3, "label": ""}]}', "label ''"),
        ('{"text": "abc def", "ents": [{"start": 0, "end": 3, "label": " "}]}', "label ' '"),
        ('{"text": "abc def", "ents": [{"start": 0, "end": 3, "label": "X", "kb_id": 7}]}', "kb_id 7"),
        ('{"text": "abc def", "ents": {"start": 0}}', "'ents' is"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf8")
    with pytest.raises(ValueError, match=rf"bad.jsonl, line 2.*{match}"):
        list(read_jsonl_docs(spacy.blank("en"), path))


def test_read_text_docs(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("one\n\n  \ntwo three\n", encoding="utf8")
    assert [d.text for d in read_text_docs(spacy.blank("en"), path)] == ["one", "two three"]


@pytest.mark.parametrize("reader", ["pubtator", "jsonl", "text"])
def test_wrong_encoding_and_missing_files_are_clear(tmp_path, reader):
    from spacy_sapel.errors import InputFileError

    read = {
        "pubtator": lambda p: list(read_pubtator(p)),
        "jsonl": lambda p: list(read_jsonl_docs(spacy.blank("en"), p)),
        "text": lambda p: list(read_text_docs(spacy.blank("en"), p)),
    }[reader]
    path = tmp_path / "latin1.txt"
    path.write_bytes('{"text": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(InputFileError, match=r"latin1.txt is not valid UTF-8 text \(byte offset 13\)"):
        read(path)
    with pytest.raises(InputFileError, match="missing.txt"):
        read(tmp_path / "missing.txt")
