"""Vocabulary readers: each format on a small fixture, every kind of bad input, name
resolution, and (slow) the real vocabularies under ../shared/data."""
from __future__ import annotations

import gzip
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from spacy_sapel.errors import KBReadError
from spacy_sapel.kb import READERS, Concept, KnowledgeBase, get_reader, read_kb

CTD_HEADER = (
    "# The Comparative Toxicogenomics Database (CTD)\n#\n# Fields:\n"
    "# DiseaseName\tDiseaseID\tAltDiseaseIDs\tDefinition\tParentIDs\tTreeNumbers\t"
    "ParentTreeNumbers\tSynonyms\tSlimMappings\n#\n"
)


def ctd_row(name: str, concept_id: str, alt: str = "", definition: str = "",
            synonyms: str = "", slims: str = "") -> str:
    return "\t".join([name, concept_id, alt, definition, "", "C14", "C14", synonyms, slims]) + "\n"


def umls_row(cui: str, name: str, *, lat: str = "ENG", ts: str = "S", ispref: str = "N",
             sab: str = "MSH", suppress: str = "N") -> str:
    fields = [cui, lat, ts, "L1", "PF", "S1", ispref, "A1", "", "", "", sab, "PT", "X", name,
              "0", suppress, ""]
    return "|".join(fields) + "|\n"


OBO_VALID = """format-version: 1.2
ontology: tst

[Term]
id: TST:001
name: heart attack
def: "Death of heart muscle." [JA:Source With Spaces, url:http\\://example.org]
synonym: "myocardial infarction" EXACT []
synonym: "cardiac event" RELATED []
synonym: "" EXACT []
xref: MESH:D009203
alt_id: TST:009

[Term]
id: TST:002
name: migraine

[Term]
id: TST:003
name: old term
is_obsolete: true

[Term]
id: OTHER:1
name: imported thing
"""


@dataclass
class Format:
    """A reader with a valid fixture and rows that break it in each documented way."""

    reader: str
    valid: str
    concepts: dict  # concept id -> expected names of the valid fixture
    nameless: str  # a row whose concept has no usable name ...
    nameless_id: str  # ... and that concept's id
    latin1: str  # a valid row containing "é", to be written as latin-1
    malformed: str  # a row with the wrong number of fields ...
    malformed_line: int  # ... on this line once appended to ``valid``
    empty_id: str  # a row without a concept id
    empty: str  # a file without concepts


FORMATS = {
    "nemo_index": Format(
        reader="nemo_index",
        valid="D001\tHeart attack\nD002\tMigraine\nD001\t\nD001\tMyocardial infarction\n",
        concepts={"D001": ["Heart attack", "Myocardial infarction"], "D002": ["Migraine"]},
        nameless="X9\t \n", nameless_id="X9",
        latin1="D003\tcafé au lait spots\n",
        malformed="D003\tname\textra\n", malformed_line=5,
        empty_id="\tname\n",
        empty="",
    ),
    "nemo_pairs": Format(
        reader="nemo_pairs",
        valid="D001\tHeart attack\tMyocardial infarction\nD002\tMigraine\t\n"
        "D001\tMI\tHeart attack\n",
        concepts={"D001": ["Heart attack", "Myocardial infarction", "MI"], "D002": ["Migraine"]},
        nameless="X9\t\t \n", nameless_id="X9",
        latin1="D003\tcafé\tau lait\n",
        malformed="D003\tonly one\n", malformed_line=4,
        empty_id="\ta\tb\n",
        empty="\n",
    ),
    "medic": Format(
        reader="medic",
        valid="D001|123456||Heart attack|Myocardial infarction||MI\n"
        "145250||Pigmentation disorder\n",
        concepts={"D001": ["Heart attack", "Myocardial infarction", "MI"],
                  "OMIM:145250": ["Pigmentation disorder"]},
        nameless="X9|| | \n", nameless_id="X9",
        latin1="D003||café au lait spots\n",
        malformed="D003|no separator here\n", malformed_line=3,
        empty_id="||name\n",
        empty="",
    ),
    "ctd": Format(
        reader="ctd",
        valid=CTD_HEADER
        + ctd_row("Heart attack", "MESH:D001", "OMIM:123456|MESH:D009", "Death of heart muscle.",
                  "Myocardial infarction||MI", "Cardiovascular disease|Pathology (process)")
        + ctd_row("Migraine", "OMIM:157300"),
        concepts={"D001": ["Heart attack", "Myocardial infarction", "MI"],
                  "OMIM:157300": ["Migraine"]},
        nameless=ctd_row("", "MESH:X9", synonyms="|"), nameless_id="X9",
        latin1=ctd_row("café au lait spots", "MESH:D003"),
        malformed="Name\tMESH:D003\textra\n", malformed_line=8,
        empty_id=ctd_row("Name", ""),
        empty=CTD_HEADER,
    ),
    "umls": Format(
        reader="umls",
        valid=umls_row("C001", "heart attack")
        + umls_row("C001", "Myocardial infarction", ts="P", ispref="Y")
        + umls_row("C001", "Infarctus du myocarde", lat="FRE", ts="P", ispref="Y")
        + umls_row("C001", "MI", suppress="O")
        + umls_row("C001", "")
        + umls_row("C002", "Migraine", ts="P", ispref="Y", sab="SNOMEDCT_US")
        + umls_row("C001", "Cardiac infarction", sab="SNOMEDCT_US"),
        concepts={"C001": ["Myocardial infarction", "heart attack", "Cardiac infarction"],
                  "C002": ["Migraine"]},
        nameless=umls_row("X9", " "), nameless_id="X9",
        latin1=umls_row("C003", "café au lait spots"),
        malformed="C003|ENG|P\n", malformed_line=8,
        empty_id=umls_row("", "name"),
        empty="",
    ),
    "obo": Format(
        reader="obo",
        valid=OBO_VALID,
        concepts={"TST:001": ["heart attack", "myocardial infarction"], "TST:002": ["migraine"],
                  "OTHER:1": ["imported thing"]},
        nameless="\n[Term]\nid: TST:X9\n", nameless_id="TST:X9",
        latin1="\n[Term]\nid: TST:004\nname: café au lait spots\n",
        malformed="\n[Term]\nid: TST:004\nname broken\n", malformed_line=29,
        empty_id="\n[Term]\nid: \nname: x\n",
        empty="! only a comment\n",
    ),
    "scispacy": Format(
        reader="scispacy",
        valid=json.dumps({"concept_id": "C001", "canonical_name": "Heart attack",
                          "aliases": ["Myocardial infarction", "", None], "types": ["T047"],
                          "definition": "Death of heart muscle.", "unknown_key": 1}) + "\n"
        + json.dumps({"concept_id": "C002", "canonical_name": "Migraine"}) + "\n",
        concepts={"C001": ["Heart attack", "Myocardial infarction"], "C002": ["Migraine"]},
        nameless=json.dumps({"concept_id": "X9", "canonical_name": "", "aliases": [" "]}) + "\n",
        nameless_id="X9",
        latin1='{"concept_id": "C003", "canonical_name": "café"}\n',
        malformed='{"concept_id": "C003", \n', malformed_line=3,
        empty_id=json.dumps({"concept_id": "", "canonical_name": "x"}) + "\n",
        empty="",
    ),
}
ALL = sorted(FORMATS)


def write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read_all(reader: str, path: Path, **options) -> list[Concept]:
    return list(get_reader(reader, **options)(path))


def quiet_read_kb(*args, **kwargs) -> KnowledgeBase:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_kb(*args, **kwargs)


# --- every reader on its valid fixture --------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_reader_reads_valid_fixture_without_warnings(name, tmp_path):
    fmt = FORMATS[name]
    kb = quiet_read_kb(write(tmp_path / f"{name}.txt", fmt.valid), name)
    assert {concept.concept_id: concept.names() for concept in kb} == fmt.concepts
    assert kb.meta["sources"] == [str(tmp_path / f"{name}.txt")]
    assert kb.meta["reader"] == READERS[name]


@pytest.mark.parametrize("name", ALL)
def test_reader_accepts_utf8_bom(name, tmp_path):
    fmt = FORMATS[name]
    kb = quiet_read_kb(write(tmp_path / "bom.txt", "\ufeff" + fmt.valid), name)
    assert kb.concept_ids == list(fmt.concepts)


def test_medic_ids_and_omim(tmp_path):
    text = FORMATS["medic"].valid + "125853|D003924||Diabetes Mellitus, Type 2\n"
    concepts = read_all("medic", write(tmp_path / "medic.txt", text))
    assert concepts[0].alt_ids == ["OMIM:123456"]
    assert concepts[1].concept_id == "OMIM:145250"
    assert (concepts[2].concept_id, concepts[2].alt_ids) == ("D003924", ["OMIM:125853"])


@pytest.mark.parametrize("strip", [True, False])
def test_ctd_gz_ids_types_definition(tmp_path, strip):
    path = tmp_path / "CTD_diseases.tsv.gz"
    path.write_bytes(gzip.compress(FORMATS["ctd"].valid.encode("utf-8")))
    first, second = read_all("ctd", path, strip_mesh_prefix=strip)
    assert first.concept_id == ("D001" if strip else "MESH:D001")
    assert first.alt_ids == ["OMIM:123456", "D009" if strip else "MESH:D009"]
    assert first.types == ["Cardiovascular disease", "Pathology (process)"]
    assert first.definition == "Death of heart muscle."
    assert (second.concept_id, second.definition, second.types) == ("OMIM:157300", None, [])


def test_gzip_is_detected_by_content(tmp_path):
    path = tmp_path / "medic.txt"
    path.write_bytes(gzip.compress(FORMATS["medic"].valid.encode("utf-8")))
    assert [c.concept_id for c in read_all("medic", path)] == ["D001", "OMIM:145250"]


def test_truncated_gzip(tmp_path):
    data = gzip.compress((FORMATS["ctd"].valid * 50).encode("utf-8"))
    path = tmp_path / "CTD_diseases.tsv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(KBReadError, match="E005.*CTD_diseases"):
        read_all("ctd", path)


def test_umls_options(tmp_path):
    mrconso = write(tmp_path / "MRCONSO.RRF", FORMATS["umls"].valid)
    mrsty = write(tmp_path / "MRSTY.RRF", "C001|T047|B2.2.1.2.1|Disease or Syndrome|AT1||\n"
                  "C001|T046|B2.2.1.2|Pathologic Function|AT2||\nC999|T047|B|D|AT3||\n")
    c001, c002 = read_all("umls", mrconso, mrsty_path=str(mrsty))
    assert c001.canonical_name == "Myocardial infarction" and c001.types == ["T047", "T046"]
    assert c002.types == []
    french = read_all("umls", mrconso, languages=["FRE"])
    assert [(c.concept_id, c.canonical_name) for c in french] == [("C001", "Infarctus du myocarde")]
    everything = read_all("umls", mrconso, languages=["ENG"], skip_suppressible=False)
    assert "MI" in everything[0].names()
    snomed = read_all("umls", mrconso, sources=["SNOMEDCT_US"])
    assert [(c.concept_id, c.names()) for c in snomed] == [
        ("C002", ["Migraine"]), ("C001", ["Cardiac infarction"])
    ]


def test_umls_bad_mrsty_row(tmp_path):
    mrconso = write(tmp_path / "MRCONSO.RRF", FORMATS["umls"].valid)
    mrsty = write(tmp_path / "MRSTY.RRF", "C001|T047|B2|Disease|AT1||\nC001|T047\n")
    with pytest.raises(KBReadError, match=r"E002.*MRSTY.RRF, line 2"):
        read_all("umls", mrconso, mrsty_path=str(mrsty))


def test_obo_options(tmp_path):
    path = write(tmp_path / "tst.obo", OBO_VALID)
    concepts = {c.concept_id: c for c in read_all("obo", path)}
    assert "TST:003" not in concepts
    assert concepts["TST:001"].alt_ids == ["TST:009", "MESH:D009203"]
    assert concepts["TST:001"].definition == "Death of heart muscle."
    related = read_all("obo", path, synonym_scopes=["exact", "RELATED"], id_prefixes=["TST:"],
                       include_xrefs_as_alt_ids=False)
    assert [c.concept_id for c in related] == ["TST:001", "TST:002"]
    assert related[0].names() == ["heart attack", "cardiac event", "myocardial infarction"]
    assert related[0].alt_ids == ["TST:009"]


def test_obo_unknown_scope():
    with pytest.raises(ValueError, match="E012.*CLOSE"):
        get_reader("obo", synonym_scopes=["EXACT", "CLOSE"])


def test_obo_not_obo(tmp_path):
    with pytest.raises(KBReadError, match="E002.*line 1.*not OBO"):
        read_all("obo", write(tmp_path / "x.obo", "hello world\n"))


def test_scispacy_json_array_equals_jsonl(tmp_path):
    jsonl = write(tmp_path / "kb.jsonl", FORMATS["scispacy"].valid)
    records = [json.loads(line) for line in FORMATS["scispacy"].valid.splitlines()]
    array = write(tmp_path / "kb.json", json.dumps(records, indent=2))
    assert read_all("scispacy", array) == read_all("scispacy", jsonl)
    first = read_all("scispacy", jsonl)[0]
    assert (first.types, first.definition) == (["T047"], "Death of heart muscle.")
    assert read_all("scispacy", write(tmp_path / "empty.json", " [ ] \n")) == []


@pytest.mark.parametrize(
    "text, line, problem",
    [
        ('[\n  {"concept_id": "C1", "canonical_name": "a"},\n  {"canonical_name": "b"}\n]',
         3, "concept_id is missing"),
        ('[\n  {"concept_id": "C1", "canonical_name": "a"}\n  {"concept_id": "C2"}\n]',
         3, "missing ','"),
        ('[\n  {"concept_id": "C1", "aliases": "a"}\n]', 2, "'aliases' is not a list"),
        ('[\n  {"concept_id": "C1", "canonical_name": 5}\n]', 2,
         "'canonical_name' is a JSON number"),
        ('[\n  ["C1"]\n]', 2, "JSON array instead of an object"),
        ('[\n  {"concept_id": "C1",\n', 3, "invalid JSON"),
        ('[{"concept_id": "C1", "canonical_name": "a"}]\n]', 2, "after the closing"),
    ],
)
def test_scispacy_json_array_errors(tmp_path, text, line, problem):
    with pytest.raises(KBReadError, match=rf"E002.*kb.json, line {line}: .*{problem}"):
        read_all("scispacy", write(tmp_path / "kb.json", text))


# --- bad input, for every reader -----------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_missing_file(name, tmp_path):
    path = tmp_path / "does_not_exist.txt"
    with pytest.raises(KBReadError, match="E001") as err:
        read_all(name, path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("name", ALL)
def test_malformed_row(name, tmp_path):
    fmt = FORMATS[name]
    path = write(tmp_path / "bad.txt", fmt.valid + fmt.malformed)
    with pytest.raises(KBReadError, match="E002") as err:
        read_all(name, path)
    message = str(err.value)
    assert f"{path}, line {fmt.malformed_line}:" in message
    assert "Expected" in message
    bad_line = (fmt.valid + fmt.malformed).split("\n")[fmt.malformed_line - 1]
    assert repr(bad_line) in message


@pytest.mark.parametrize("name", ALL)
def test_empty_concept_id(name, tmp_path):
    fmt = FORMATS[name]
    path = write(tmp_path / "bad.txt", fmt.valid + fmt.empty_id)
    with pytest.raises(KBReadError, match="E002") as err:
        read_all(name, path)
    line = (fmt.valid + fmt.empty_id).count("\n", 0, len(fmt.valid)) + 1
    if name == "obo":  # the empty "id:" line follows a blank line and "[Term]"
        line += 2
    assert f"{path}, line {line}:" in str(err.value)


@pytest.mark.parametrize("name", ALL)
def test_concept_without_name_is_skipped_with_one_warning(name, tmp_path):
    fmt = FORMATS[name]
    path = write(tmp_path / "nameless.txt", fmt.valid + fmt.nameless)
    with pytest.warns(UserWarning) as record:
        kb = read_kb(path, name)
    assert len(record) == 1
    message = str(record[0].message)
    assert "W002" in message and str(path) in message and repr(fmt.nameless_id) in message
    assert kb.concept_ids == list(fmt.concepts)


@pytest.mark.parametrize("name", ALL)
def test_wrong_encoding(name, tmp_path):
    fmt = FORMATS[name]
    path = write(tmp_path / "latin1.txt", fmt.valid + fmt.latin1, encoding="latin-1")
    offset = len(fmt.valid.encode("utf-8")) + fmt.latin1.index("é")
    with pytest.raises(KBReadError, match="E003") as err:
        read_all(name, path)
    assert str(path) in str(err.value) and f"byte offset {offset}" in str(err.value)


def test_wrong_encoding_in_json_array(tmp_path):
    path = tmp_path / "kb.json"
    data = b'[{"concept_id": "C1", "canonical_name": "caf\xe9"}]'
    path.write_bytes(data)
    offset = data.index(0xE9)
    with pytest.raises(KBReadError, match=f"E003.*byte offset {offset}"):
        read_all("scispacy", path)


@pytest.mark.parametrize("name", ["medic", "ctd", "scispacy"])
def test_duplicate_ids_are_merged_with_one_warning(name, tmp_path):
    fmt = FORMATS[name]
    path = write(tmp_path / "dup.txt", fmt.valid + fmt.valid)
    with pytest.warns(UserWarning) as record:
        kb = read_kb(path, name)
    assert len(record) == 1 and "W001" in str(record[0].message)
    assert "2 duplicate" in str(record[0].message)
    assert {c.concept_id: c.names() for c in kb} == fmt.concepts


@pytest.mark.parametrize("name", ALL)
def test_empty_input(name, tmp_path):
    path = write(tmp_path / "empty.txt", FORMATS[name].empty)
    with pytest.raises(KBReadError, match="E004") as err:
        read_kb(path, name)
    assert str(path) in str(err.value)


# --- names and read_kb ------------------------------------------------------------


def test_reader_names():
    assert READERS == {name: f"sapel.{name}_reader.v1" for name in FORMATS}


@pytest.mark.parametrize("name", ALL)
def test_get_reader_resolves_short_and_full_names(name):
    assert callable(get_reader(name))
    assert callable(get_reader(READERS[name]))


def test_get_reader_unknown_name():
    with pytest.raises(ValueError, match="E011.*'mesh'.*nemo_index.*sapel.obo_reader.v1"):
        get_reader("mesh")


def test_read_kb_several_files(tmp_path):
    first = write(tmp_path / "a.tsv", "D001\tHeart attack\n")
    second = write(tmp_path / "b.tsv", "D002\tMigraine\nD001\tMI\n")
    with pytest.warns(UserWarning, match="W001.*a.tsv, .*b.tsv: 1 duplicate"):
        kb = read_kb([first, str(second)], "sapel.nemo_index_reader.v1", name="mini")
    assert {c.concept_id: c.names() for c in kb} == {
        "D001": ["Heart attack", "MI"], "D002": ["Migraine"]
    }
    assert kb.meta["sources"] == [str(first), str(second)]
    assert kb.meta["name"] == "mini"


# --- the real vocabularies ---------------------------------------------------------


@pytest.mark.slow
def test_real_medic(shared_data):
    kb = quiet_read_kb(shared_data / "medic-2012" / "medic_06Jul2012.txt", "medic")
    assert len(kb) == 11915
    assert kb.id_set("D003924") == {"D003924", "OMIM:125853"}
    assert any(alt.startswith("OMIM:") for concept in kb for alt in concept.alt_ids)
    assert "OMIM:145250" in kb


@pytest.mark.slow
def test_real_ctd(shared_data):
    kb = quiet_read_kb(shared_data / "ctd-medic-2017" / "CTD_diseases.tsv.gz", "ctd")
    assert len(kb) == 11865
    assert "D003924" in kb
    assert not any(concept_id.startswith("MESH:") for concept_id in kb.concept_ids)
    assert kb["D003924"].types


@pytest.mark.slow
def test_real_doid(shared_data):
    path = shared_data / "doid" / "doid_2016-09-01.obo"
    kb = read_kb(path, "obo")
    text = path.read_text(encoding="utf-8")
    stanzas = [s for s in text.split("\n[") if s.startswith("Term]")]
    obsolete = {s.split("\nid: ")[1].split("\n")[0] for s in stanzas if "is_obsolete: true" in s}
    assert len(stanzas) == 9344
    assert len(kb) == 9344 - len(obsolete)
    assert not obsolete & set(kb.concept_ids)
    assert "MESH:D006394" in kb.id_set("DOID:0001816")


@pytest.mark.slow
def test_real_scispacy_fixture(shared_data):
    kb = quiet_read_kb(shared_data / "scispacy-fixtures" / "umls_test_fixture.json", "scispacy")
    assert len(kb) == 11
    assert kb["C0000005"].names() == ["(131)I-Macroaggregated Albumin", "(131)I-MAA"]


@pytest.mark.parametrize(
    "reader,header,row",
    [
        ("nemo_index", "id\tname", "D1\tflu"),
        ("nemo_index", "CUI\tSTR", "D1\tflu"),
        ("nemo_pairs", "concept_id\tsynonym1\tsynonym2", "D1\tflu\tinfluenza"),
    ],
)
def test_a_header_row_warns_or_is_skipped(tmp_path, reader, header, row):
    path = tmp_path / "vocab.tsv"
    path.write_text(f"\n{header}\n{row}\n", encoding="utf8")
    with pytest.warns(UserWarning, match=r"W003.*vocab.tsv, line 2.*header.*skip_header=true"):
        kb = read_kb(path, reader)
    assert len(kb) == 2  # read as a concept, as the warning says
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kb = read_kb(path, reader, skip_header=True)
    assert kb.concept_ids == ["D1"]
    with pytest.raises(ValueError, match="E012.*skip_header.*'yes'"):
        read_kb(path, reader, skip_header="yes")


def test_a_first_row_that_is_a_concept_does_not_warn(tmp_path):
    path = tmp_path / "vocab.tsv"
    path.write_text("D1\tflu\nD2\tname\n", encoding="utf8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_kb(path, "nemo_index").concept_ids == ["D1", "D2"]
