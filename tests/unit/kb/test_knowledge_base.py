"""KnowledgeBase: names, alias table, merging, look-ups and serialization."""
from __future__ import annotations

import warnings

import numpy
import pytest
import srsly
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_sapel.errors import KBReadError, RowOutOfRangeError, UnknownConceptError
from spacy_sapel.kb import Concept, KnowledgeBase, knowledge_base
from spacy_sapel.kb.columns import ARRAYS


def _concepts() -> list[Concept]:
    return [
        Concept("D001", "Heart attack", ["myocardial infarction", "HEART ATTACK", "", "MI"],
                types=["Disease"], definition="Death of heart muscle.", alt_ids=["OMIM:1"]),
        Concept("D002", "Migraine", ["migraine  headache"], types=["Disease"]),
        Concept("D003", "Asthma"),
    ]


@pytest.fixture
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_concepts(_concepts(), source="test", name="test_kb")


def test_names_dedup_keeps_first_spelling_and_drops_empty():
    aliases = ["heart attack", "HEART  ATTACK", "", "  ", "MI", "mi"]
    concept = Concept("C1", " Heart\t attack ", aliases)
    assert concept.names() == ["Heart attack", "MI"]
    assert Concept("C2", "", ["", "x"]).names() == ["x"]
    assert Concept("C3", " ").names() == []


@pytest.mark.parametrize("invisible", ["\x00", "\u200b", " \u200b\u00ad ", "\ufeff", "\u2028"])
def test_names_of_invisible_characters_count_as_empty(invisible):
    assert Concept("C1", invisible, ["x", invisible]).names() == ["x"]
    with pytest.raises(ValueError, match="E010"):
        KnowledgeBase().add_concept(Concept("C1", invisible))
    kb = KnowledgeBase.from_concepts([Concept("C1", "a")])
    assert kb.add_aliases("C1", [invisible], source="test") == 0
    with pytest.warns(UserWarning, match="W002.*'C2'"):
        kb = KnowledgeBase.from_concepts([Concept("C1", "a"), Concept("C2", invisible)])
    assert kb.concept_ids == ["C1"]


def test_alias_table_rows_and_order(kb):
    names, rows = kb.alias_table()
    assert names == [
        "Heart attack", "myocardial infarction", "MI", "Migraine", "migraine headache", "Asthma"
    ]
    assert rows.dtype == numpy.int32
    assert rows.tolist() == [0, 0, 0, 1, 1, 2]
    assert [kb.concept_at(row).concept_id for row in rows] == ["D001"] * 3 + ["D002"] * 2 + ["D003"]


def test_alias_table_is_cached_and_invalidated(kb):
    first = kb.alias_table()
    assert kb.alias_table() is first
    kb.add_aliases("D003", ["bronchial asthma"], source="corpus")
    names, rows = kb.alias_table()
    assert names[-1] == "bronchial asthma" and rows[-1] == 2
    kb.add_concept(Concept("D004", "Fever"))
    assert kb.alias_table()[0][-1] == "Fever"


def test_lookups(kb):
    assert len(kb) == 3
    assert "D002" in kb and "D999" not in kb and 5 not in kb
    assert kb.concept_ids == ["D001", "D002", "D003"]
    assert [concept.concept_id for concept in kb] == kb.concept_ids
    assert kb["D002"].canonical_name == "Migraine"
    assert kb.concept_row("D003") == 2
    assert kb.concept_at(1).concept_id == "D002"
    assert kb.id_set("D001") == {"D001", "OMIM:1"}
    with pytest.raises(KeyError, match="D999.*test_kb") as err:
        kb["D999"]
    assert isinstance(err.value, UnknownConceptError) and str(err.value).startswith("[E008] ")
    with pytest.raises(IndexError, match="Row 3") as err:
        kb.concept_at(3)
    assert isinstance(err.value, RowOutOfRangeError)


def test_meta(kb):
    assert kb.meta["name"] == "test_kb"
    assert kb.meta["sources"] == ["test"]
    assert kb.meta["n_concepts"] == 3
    assert kb.meta["n_aliases"] == len(kb.alias_table()[0]) == 6
    assert kb.meta["format_version"] == 3


def test_stored_concepts_are_normalised_copies():
    concept = Concept("D001", "  Heart  attack", ["heart attack", "MI"], types=["T", "T", ""],
                      alt_ids=["D001", "X:1", "X:1"], definition="  ")
    kb = KnowledgeBase()
    kb.add_concept(concept)
    concept.aliases.append("changed later")
    stored = kb["D001"]
    assert (stored.canonical_name, stored.aliases) == ("Heart attack", ["MI"])
    assert stored.types == ["T"] and stored.alt_ids == ["X:1"] and stored.definition is None


def test_empty_canonical_name_is_replaced_by_first_alias():
    kb = KnowledgeBase()
    kb.add_concept(Concept("C1", "", ["", "first", "second"]))
    assert kb["C1"].canonical_name == "first"
    assert kb["C1"].names() == ["first", "second"]


def test_merge_semantics():
    concepts = [
        Concept("D001", "Heart attack", ["MI"], types=["A"], alt_ids=["X:1"]),
        Concept("D002", "Migraine"),
        Concept("D001", "Myocardial infarction", ["mi", "cardiac infarction"], types=["B", "A"],
                definition="Death of heart muscle.", alt_ids=["X:2", "X:1"]),
        Concept("D001", "heart attack", definition="Another definition.", alt_ids=["D001"]),
        Concept("D002", "migraine"),
    ]
    with pytest.warns(UserWarning) as record:
        kb = KnowledgeBase.from_concepts(concepts, source="dict.tsv")
    assert len(record) == 1
    message = str(record[0].message)
    assert "W001" in message and "dict.tsv" in message and "2 duplicate" in message
    assert "'D001'" in message and "'D002'" in message
    assert kb.concept_ids == ["D001", "D002"]
    merged = kb["D001"]
    assert merged.names() == ["Heart attack", "MI", "Myocardial infarction", "cardiac infarction"]
    assert merged.types == ["A", "B"]
    assert merged.alt_ids == ["X:1", "X:2"]
    assert merged.definition == "Death of heart muscle."
    assert kb.meta["n_aliases"] == len(kb.alias_table()[0]) == 5


def test_add_concept_reports_merges():
    kb = KnowledgeBase()
    assert kb.add_concept(Concept("C1", "a")) is False
    assert kb.add_concept(Concept("C1", "b")) is True
    assert kb["C1"].names() == ["a", "b"]


@pytest.mark.parametrize("concept", [Concept(" ", "name"), Concept("C1", " ", [""])])
def test_add_concept_rejects_empty_id_or_no_name(concept):
    with pytest.raises(ValueError, match="E010"):
        KnowledgeBase().add_concept(concept)


def test_from_concepts_skips_nameless_with_one_warning():
    concepts = [Concept("C1", "a"), Concept("C2", ""), Concept("C3", " ", ["", " "])]
    with pytest.warns(UserWarning) as record:
        kb = KnowledgeBase.from_concepts(concepts, source="in.txt")
    assert len(record) == 1
    message = str(record[0].message)
    assert "W002" in message and "in.txt" in message and "'C2', 'C3'" in message
    assert kb.concept_ids == ["C1"]


@pytest.mark.parametrize("concepts", [[], [Concept("C1", "")]])
def test_from_concepts_empty_is_an_error(concepts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KBReadError, match="E004.*empty.txt"):
            KnowledgeBase.from_concepts(concepts, source="empty.txt")


def test_add_aliases(kb):
    mentions = ["Migraine", "sick headache", " sick  HEADACHE ", "", "hemicrania"]
    added = kb.add_aliases("D002", mentions, source="train.pubtator")
    assert added == 2
    assert kb["D002"].names()[-2:] == ["sick headache", "hemicrania"]
    assert kb.add_aliases("D002", ["hemicrania"], source="train.pubtator") == 0
    assert kb.meta["alias_sources"] == {"train.pubtator": 2}
    assert kb.meta["n_aliases"] == len(kb.alias_table()[0]) == 8
    with pytest.raises(KeyError, match="D999"):
        kb.add_aliases("D999", ["x"], source="train.pubtator")


def _assert_same(a: KnowledgeBase, b: KnowledgeBase) -> None:
    assert list(a) == list(b)
    assert a.meta == b.meta
    assert a.alias_table()[0] == b.alias_table()[0]
    assert a.alias_table()[1].tolist() == b.alias_table()[1].tolist()


def test_to_disk_from_disk_round_trip(kb, tmp_path):
    kb.add_aliases("D003", ["bronchial asthma"], source="corpus")
    kb.to_disk(tmp_path / "kb")
    assert sorted(p.name for p in (tmp_path / "kb").iterdir()) == sorted(
        [f"{name}.npy" for name in ARRAYS] + ["meta.json", "priors.json"]
    )
    loaded = KnowledgeBase.from_disk(str(tmp_path / "kb"))
    _assert_same(kb, loaded)
    loaded.add_concept(Concept("D004", "Fever"))
    assert loaded.concept_row("D004") == 3


def test_to_bytes_from_bytes_round_trip(kb):
    _assert_same(kb, KnowledgeBase.from_bytes(kb.to_bytes()))


def test_disk_format_is_column_oriented(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    folder = tmp_path / "kb"
    blob = numpy.load(folder / "strings.npy").tobytes()
    offsets = numpy.load(folder / "offsets.npy")
    strings = [blob[a:b].decode("utf8") for a, b in zip(offsets[:-1], offsets[1:])]
    assert strings[:3] == ["D001", "D002", "D003"]
    assert strings[3 : 3 + 6] == kb.alias_table()[0]
    assert numpy.load(folder / "alias_concepts.npy").tolist() == kb.alias_table()[1].tolist()


def test_loaded_kb_is_memory_mapped_and_lazy(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    loaded = KnowledgeBase.from_disk(tmp_path / "kb")
    assert isinstance(loaded.alias_concepts(), numpy.memmap)
    assert loaded._alias_table is None  # no names decoded until asked for
    assert loaded.n_names == 6 and len(loaded) == 3
    assert loaded["D001"] == kb["D001"] and loaded.concept_at(2) == kb.concept_at(2)
    assert "D002" in loaded and "D999" not in loaded and 5 not in loaded
    assert loaded.id_set("D001") == {"D001", "OMIM:1"}
    with pytest.raises(KeyError, match="E008.*D999"):
        loaded.concept_row("D999")
    with pytest.raises(IndexError, match="E009"):
        loaded.concept_at(3)
    eager = KnowledgeBase.from_disk(tmp_path / "kb", mmap=False)
    assert not isinstance(eager.alias_concepts(), numpy.memmap)
    _assert_same(kb, eager)
    # the first change turns the columns into objects; the result is a normal KB
    assert loaded.add_aliases("D002", ["hemicrania"], source="corpus") == 1
    assert loaded["D002"].aliases == ["migraine headache", "hemicrania"]
    assert loaded.alias_table()[1].tolist() == [0, 0, 0, 1, 1, 1, 2]


def _write_v1(kb: KnowledgeBase, folder) -> None:
    """A KB directory in format version 1 (msgpack column lists), as written before."""
    names, rows = kb.alias_table()

    def counts(values):
        return numpy.asarray(values, dtype="<u4").tobytes()

    concepts = list(kb)
    columns = {
        "format_version": 1,
        "ids": kb.concept_ids,
        "names": names,
        "name_counts": counts(numpy.bincount(rows, minlength=len(kb))),
        "definitions": [c.definition for c in concepts],
        "types": [t for c in concepts for t in c.types],
        "type_counts": counts([len(c.types) for c in concepts]),
        "alt_ids": [a for c in concepts for a in c.alt_ids],
        "alt_id_counts": counts([len(c.alt_ids) for c in concepts]),
    }
    folder.mkdir()
    (folder / "concepts.msgpack").write_bytes(srsly.msgpack_dumps(columns))
    srsly.write_json(folder / "meta.json", {**kb.meta, "format_version": 1})
    return columns


def test_reads_format_version_1(kb, tmp_path):
    columns = _write_v1(kb, tmp_path / "v1")
    loaded = KnowledgeBase.from_disk(tmp_path / "v1")
    _assert_same(kb, loaded)
    assert loaded.meta["format_version"] == 3
    data = srsly.msgpack_dumps({"meta": {**kb.meta, "format_version": 1}, "concepts": columns})
    _assert_same(kb, KnowledgeBase.from_bytes(data))
    # and it is written back as the current version
    loaded.to_disk(tmp_path / "v3")
    _assert_same(kb, KnowledgeBase.from_disk(tmp_path / "v3"))


def test_to_disk_is_atomic(kb, tmp_path, monkeypatch):
    target = tmp_path / "kb"
    kb.to_disk(target)
    bigger = KnowledgeBase.from_concepts([*_concepts(), Concept("D004", "Fever")])

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(knowledge_base, "write_json", fail)
    with pytest.raises(OSError, match="disk full"):
        bigger.to_disk(target)
    monkeypatch.undo()
    _assert_same(kb, KnowledgeBase.from_disk(target))
    assert [p.name for p in tmp_path.iterdir()] == ["kb"]


def test_from_disk_of_no_directory(tmp_path):
    with pytest.raises(KBReadError, match="E001.*nowhere"):
        KnowledgeBase.from_disk(tmp_path / "nowhere")


@pytest.mark.parametrize("part", ["offsets.npy", "priors.json"])
def test_from_disk_missing_part(tmp_path, kb, part):
    """A KB directory of the current format without one of its files is refused,
    naming it (priors.json too: a version-3 KB always writes it)."""
    kb.to_disk(tmp_path / "kb")
    (tmp_path / "kb" / part).unlink()
    with pytest.raises(KBReadError, match=f"E001.*{part}"):
        KnowledgeBase.from_disk(tmp_path / "kb")


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[: len(data) // 2], lambda data: b"\xc1garbage" + data, lambda data: b""],
    ids=["truncated", "garbage", "empty"],
)
@pytest.mark.parametrize("column", ["strings", "offsets", "alias_concepts"])
def test_from_disk_corrupt_concepts(kb, tmp_path, damage, column):
    kb.to_disk(tmp_path / "kb")
    file = tmp_path / "kb" / f"{column}.npy"
    file.write_bytes(damage(file.read_bytes()))
    with pytest.raises(KBReadError, match="E006.*kb"):
        KnowledgeBase.from_disk(tmp_path / "kb")


def test_from_disk_inconsistent_columns(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    numpy.save(tmp_path / "kb" / "alias_concepts.npy", numpy.zeros(6, dtype=numpy.int32))
    with pytest.raises(KBReadError, match="E006.*alias -> concept"):
        KnowledgeBase.from_disk(tmp_path / "kb")
    numpy.save(tmp_path / "kb" / "alias_concepts.npy", numpy.zeros(6, dtype=numpy.int64))
    with pytest.raises(KBReadError, match="E006.*int32"):
        KnowledgeBase.from_disk(tmp_path / "kb")


def test_from_disk_corrupt_meta(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    (tmp_path / "kb" / "meta.json").write_text('{"name": ', encoding="utf8")
    with pytest.raises(KBReadError, match="E006.*meta.json"):
        KnowledgeBase.from_disk(tmp_path / "kb")


def test_from_disk_meta_does_not_match_concepts(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    meta = srsly.read_json(tmp_path / "kb" / "meta.json")
    srsly.write_json(tmp_path / "kb" / "meta.json", {**meta, "n_concepts": 2})
    with pytest.raises(KBReadError, match="E006.*2 concepts"):
        KnowledgeBase.from_disk(tmp_path / "kb")


def test_from_disk_newer_format_version(kb, tmp_path):
    kb.to_disk(tmp_path / "kb")
    meta = srsly.read_json(tmp_path / "kb" / "meta.json")
    srsly.write_json(tmp_path / "kb" / "meta.json", {**meta, "format_version": 99})
    with pytest.raises(KBReadError, match="E007.*version 99"):
        KnowledgeBase.from_disk(tmp_path / "kb")


@pytest.mark.parametrize("data", [b"", b"\x93\x01", srsly.msgpack_dumps({"meta": {}})])
def test_from_bytes_corrupt(data):
    with pytest.raises(KBReadError, match="E006"):
        KnowledgeBase.from_bytes(data)


_text = st.text(alphabet=st.sampled_from("aB c\t-é"), max_size=6)
_concept = st.builds(
    Concept,
    concept_id=st.sampled_from(["C1", "C2", "C3", "C4"]),
    canonical_name=_text,
    aliases=st.lists(_text, max_size=4),
    types=st.lists(st.sampled_from(["T1", "T2"]), max_size=2),
    definition=st.one_of(st.none(), _text),
    alt_ids=st.lists(st.sampled_from(["X:1", "C1"]), max_size=2),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(_concept, max_size=8))
def test_alias_table_and_round_trip_properties(concepts):
    kb = KnowledgeBase()
    for concept in concepts:
        if concept.names():
            kb.add_concept(concept)
    names, rows = kb.alias_table()
    assert len(names) == len(rows) == kb.meta["n_aliases"]
    for row, concept in enumerate(kb):
        assert [n for n, r in zip(names, rows) if r == row] == concept.names()
        assert concept.concept_id not in concept.alt_ids
    _assert_same(kb, KnowledgeBase.from_bytes(kb.to_bytes()))


def test_non_ascii_and_empty_kb_round_trip(tmp_path):
    kb = KnowledgeBase.from_concepts(
        [Concept("Ä1", "Sjögren syndrome", ["シェーグレン症候群", "β-thalassemia"], definition="é")]
    )
    kb.to_disk(tmp_path / "kb")
    loaded = KnowledgeBase.from_disk(tmp_path / "kb")
    _assert_same(kb, loaded)
    assert loaded["Ä1"].definition == "é" and loaded.concept_id_at(0) == "Ä1"
    empty = KnowledgeBase()
    empty.to_disk(tmp_path / "empty")
    loaded = KnowledgeBase.from_disk(tmp_path / "empty")
    assert len(loaded) == 0 and loaded.alias_table()[0] == [] and "x" not in loaded
