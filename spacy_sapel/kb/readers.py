"""Readers for vocabulary formats, registered as ``sapel.<format>_reader.v1``.

Each registered factory takes plain config options and returns ``reader(path)``, a
generator of ``Concept``s. Readers decode strictly as UTF-8 (a UTF-8 BOM and gzip
compression are accepted), report malformed rows with file, line and expectation, and
skip concepts without any name with one warning per file.
"""
from __future__ import annotations

import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.util import registry

from ..errors import Errors, KBReadError, SapelError, Warnings
from ..progress import progress
from ..util import iter_lines, malformed_line, read_text
from .knowledge_base import Concept, KnowledgeBase, format_examples

ConceptReader = Callable[[Union[str, Path]], Iterator[Concept]]

READERS: Dict[str, str] = {
    "nemo_index": "sapel.nemo_index_reader.v1",
    "nemo_pairs": "sapel.nemo_pairs_reader.v1",
    "medic": "sapel.medic_reader.v1",
    "ctd": "sapel.ctd_reader.v1",
    "umls": "sapel.umls_reader.v1",
    "obo": "sapel.obo_reader.v1",
    "scispacy": "sapel.scispacy_reader.v1",
}

OBO_SCOPES = ("EXACT", "BROAD", "NARROW", "RELATED")
_UMLS_SUPPRESSIBLE = frozenset({"O", "E", "Y"})


# --- resolving and running readers -------------------------------------------------


def get_reader(name: str, **options: Any) -> ConceptReader:
    """The reader registered as ``name`` (a short name such as ``"ctd"`` or a full
    registered name), configured with ``options``."""
    full_name = READERS.get(name, name)
    if full_name not in READERS.values() and full_name not in registry.misc:
        valid = [*READERS, *READERS.values()]
        raise SapelError(Errors.E011.format(name=name, names=", ".join(valid)))
    return registry.misc.get(full_name)(**options)


def read_kb(
    paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    reader: str,
    *,
    name: str = "kb",
    **options: Any,
) -> KnowledgeBase:
    """Read one or more vocabulary files with ``reader`` into a knowledge base;
    concepts repeated across or within files are merged."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    path_list = [Path(path) for path in paths]
    read = get_reader(reader, **options)
    source = ", ".join(str(path) for path in path_list) or "(no input files)"
    concepts = chain.from_iterable(read(path) for path in path_list)
    kb = KnowledgeBase.from_concepts(concepts, source=source, name=name)
    kb.meta["sources"] = [str(path) for path in path_list]
    kb.meta["reader"] = READERS.get(reader, reader)
    return kb


# --- shared input handling -----------------------------------------------------------


def _iter_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """The numbered lines of a vocabulary file, with a progress bar (UMLS's
    MRCONSO.RRF has millions)."""
    yield from progress(iter_lines(path, error=KBReadError), desc=f"Reading {path.name}", unit="line")


def _read_text(path: Path) -> str:
    return read_text(path, error=KBReadError)


def _row_error(path: Path, line: int, problem: str, expected: str, text: str) -> KBReadError:
    return malformed_line(path, line, problem, expected, text, error=KBReadError)


def _split_row(
    path: Path, number: int, line: str, sep: str, n: int, expected: str, *, id_field: int = 0
) -> List[str]:
    """Split a row into exactly ``n`` fields, the concept id (``id_field``) non-empty."""
    fields = line.split(sep)
    if len(fields) != n:
        problem = f"{len(fields)} {sep!r}-separated field(s) instead of {n}"
        raise _row_error(path, number, problem, expected, line)
    if not fields[id_field].strip():
        raise _row_error(path, number, "the concept id is empty", expected, line)
    return fields


def _named(concepts: Iterable[Concept], path: Path) -> Iterator[Concept]:
    """Pass on the concepts that have a name (an empty canonical name is replaced by
    the first alias); skip the others and report them in one warning at the end."""
    skipped: List[str] = []
    for concept in concepts:
        names = concept.names()
        if not names:
            skipped.append(concept.concept_id)
            continue
        if not concept.canonical_name.strip():
            concept.canonical_name, concept.aliases = names[0], names[1:]
        yield concept
    if skipped:
        warnings.warn(
            Warnings.W002.format(
                path=path, count=len(skipped), examples=format_examples(skipped)
            )
        )


def _split_list(value: str) -> List[str]:
    """A ``|``-separated list without empty items."""
    return [item.strip() for item in value.split("|") if item.strip()]


# --- NeMo ------------------------------------------------------------------------------


@registry.misc("sapel.nemo_index_reader.v1")
def nemo_index_reader(*, skip_header: bool = False) -> ConceptReader:
    """NeMo entity-linking index TSV ``ID<TAB>name``; the rows of one id are its
    synonyms and the first one is the canonical name. ``skip_header``: the first
    row is a header (``id<TAB>name``); a first row that looks like one is otherwise
    read as a concept, with a warning."""
    return _nemo_tsv_reader("nemo_index", 2, "ID<TAB>name", skip_header)


@registry.misc("sapel.nemo_pairs_reader.v1")
def nemo_pairs_reader(*, skip_header: bool = False) -> ConceptReader:
    """NeMo SAP-training pairs TSV ``ID<TAB>synonym<TAB>synonym``; a concept's names
    are all its synonyms in first-seen order. ``skip_header`` as for ``nemo_index``."""
    return _nemo_tsv_reader("nemo_pairs", 3, "ID<TAB>synonym1<TAB>synonym2", skip_header)


def _nemo_tsv_reader(reader: str, n_fields: int, layout: str, skip_header: bool) -> ConceptReader:
    """A reader of ``n_fields`` tab-separated columns, the first the concept id, the
    rows of one id grouped into one concept."""
    _check_skip_header(reader, skip_header)
    expected = f"{n_fields} tab-separated fields: {layout}"

    def read(path: Union[str, Path]) -> Iterator[Concept]:
        path = Path(path)
        yield from _named(_grouped_rows(path, n_fields, expected, skip_header=skip_header), path)

    return read


def _grouped_rows(
    path: Path, n_fields: int, expected: str, *, skip_header: bool = False
) -> Iterator[Concept]:
    """One concept per id of a ``ID<TAB>name...`` file, its names in file order; the
    first non-empty row is skipped with ``skip_header``, and reported when it looks
    like a header without it."""
    groups: Dict[str, List[str]] = {}
    first = True
    for number, line in _iter_lines(path):
        if not line.strip():
            continue
        if first and skip_header:
            first = False
            continue
        concept_id, *names = _split_row(path, number, line, "\t", n_fields, expected)
        if first:
            first = False
            if _looks_like_header(concept_id, names):
                warnings.warn(Warnings.W003.format(path=path, line=number, text=line))
        groups.setdefault(concept_id.strip(), []).extend(names)
    for concept_id, names in groups.items():
        yield Concept(concept_id, names[0], names[1:])


_HEADER_IDS = frozenset(
    {"id", "ids", "cui", "conceptid", "code", "identifier", "entityid", "curie", "meshid"}
)
_HEADER_NAMES = frozenset(
    {"name", "names", "synonym", "synonyms", "synonym1", "synonym2", "term", "alias", "str"}
)


def _check_skip_header(reader: str, skip_header: Any) -> None:
    if not isinstance(skip_header, bool):
        raise SapelError(
            Errors.E012.format(
                option="skip_header", values=[skip_header], reader=reader, valid="true, false"
            )
        )


def _looks_like_header(concept_id: str, names: Sequence[str]) -> bool:
    """A row of column names: the id field is a word like ``id`` or ``cui``, or every
    name is a word like ``name`` or ``synonym`` (case, spaces, ``_`` and ``-`` ignored)."""

    def word(value: str) -> str:
        return re.sub(r"[\s_-]", "", value).casefold()

    return word(concept_id) in _HEADER_IDS or all(word(name) in _HEADER_NAMES for name in names)


# --- CTD MEDIC ---------------------------------------------------------------------


def _omim(concept_id: str) -> str:
    """Bare OMIM numbers as ``OMIM:n``; other ids unchanged."""
    return f"OMIM:{concept_id}" if concept_id.isdigit() else concept_id


def _is_omim(concept_id: str) -> bool:
    return concept_id.isdigit() or concept_id.startswith("OMIM:")


@registry.misc("sapel.medic_reader.v1")
def medic_reader() -> ConceptReader:
    """MEDIC as distributed with NCBI-disease (BioSyn): ``ID|altID|...||name|synonym|...``
    per line. MeSH ids stay bare (``D…``, ``C…``); bare OMIM numbers become ``OMIM:n``.
    The first MeSH id of a line is the primary id, as in CTD (the 2012 file lists the
    OMIM number first on 772 lines, e.g. ``125853|D003924||Diabetes Mellitus, Type 2``);
    a line without one keeps its first id."""

    def read(path: Union[str, Path]) -> Iterator[Concept]:
        path = Path(path)
        yield from _named(_medic_concepts(path), path)

    return read


def _medic_concepts(path: Path) -> Iterator[Concept]:
    expected = "ID|altID|...||name|synonym|..."
    for number, line in _iter_lines(path):
        if not line.strip():
            continue
        ids, sep, names = line.partition("||")
        if not sep:
            raise _row_error(path, number, "no '||' between the ids and the names", expected, line)
        all_ids = [concept_id.strip() for concept_id in ids.split("|")]
        if not all_ids[0]:
            raise _row_error(path, number, "the concept id is empty", expected, line)
        primary = next((i for i in all_ids if i and not _is_omim(i)), all_ids[0])
        alt_ids = [_omim(i) for i in all_ids if i and i != primary]
        name, *synonyms = names.split("|")
        yield Concept(_omim(primary), name, synonyms, alt_ids=alt_ids)


@registry.misc("sapel.ctd_reader.v1")
def ctd_reader(*, strip_mesh_prefix: bool = True) -> ConceptReader:
    """CTD ``CTD_diseases.tsv(.gz)``: 9 tab-separated columns (DiseaseName, DiseaseID,
    AltDiseaseIDs, Definition, ParentIDs, TreeNumbers, ParentTreeNumbers, Synonyms,
    SlimMappings) after ``#`` comment lines. ``strip_mesh_prefix`` turns ``MESH:D001``
    into ``D001``, as PubTator corpora write MeSH ids; SlimMappings become the types."""

    def ctd_id(value: str) -> str:
        value = value.strip()
        return value[len("MESH:") :] if strip_mesh_prefix and value.startswith("MESH:") else value

    def read(path: Union[str, Path]) -> Iterator[Concept]:
        path = Path(path)
        yield from _named(_ctd_concepts(path, ctd_id), path)

    return read


def _ctd_concepts(path: Path, ctd_id: Callable[[str], str]) -> Iterator[Concept]:
    expected = (
        "9 tab-separated fields: DiseaseName, DiseaseID, AltDiseaseIDs, Definition, "
        "ParentIDs, TreeNumbers, ParentTreeNumbers, Synonyms, SlimMappings"
    )
    for number, line in _iter_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        fields = _split_row(path, number, line, "\t", 9, expected, id_field=1)
        name, concept_id, alt_ids, definition, _, _, _, synonyms, slims = fields
        yield Concept(
            concept_id=ctd_id(concept_id),
            canonical_name=name,
            aliases=synonyms.split("|"),
            types=_split_list(slims),
            definition=definition.strip() or None,
            alt_ids=[ctd_id(alt) for alt in _split_list(alt_ids)],
        )


# --- UMLS ------------------------------------------------------------------------------


@dataclass(slots=True)
class _UmlsEntry:
    preferred: Optional[str] = None
    names: List[str] = field(default_factory=list)
    types: List[str] = field(default_factory=list)


@registry.misc("sapel.umls_reader.v1")
def umls_reader(
    *,
    languages: Sequence[str] = ("ENG",),
    skip_suppressible: bool = True,
    sources: Optional[Sequence[str]] = None,
    mrsty_path: Optional[str] = None,
) -> ConceptReader:
    """UMLS ``MRCONSO.RRF``, streamed in one pass and grouped by CUI (the file need not
    be sorted). Rows are kept for ``languages``, for ``sources`` (SAB; all when None)
    and, with ``skip_suppressible``, when SUPPRESS is not O, E or Y. The canonical name
    is the preferred atom (TS=P, ISPREF=Y), else the first kept name. With
    ``mrsty_path`` (MRSTY.RRF), the semantic type ids (TUIs) become the types."""
    language_set = frozenset(languages)
    source_set = None if sources is None else frozenset(sources)

    def read(path: Union[str, Path]) -> Iterator[Concept]:
        path = Path(path)
        entries = _mrconso_entries(path, language_set, skip_suppressible, source_set)
        if mrsty_path is not None:
            _add_mrsty_types(Path(mrsty_path), entries)
        yield from _named(_umls_concepts(entries), path)

    return read


def _mrconso_entries(
    path: Path,
    languages: frozenset,
    skip_suppressible: bool,
    sources: Optional[frozenset],
) -> Dict[str, _UmlsEntry]:
    """The kept names of each CUI, in file order."""
    expected = (
        "18 '|'-separated fields and a trailing '|': CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|"
        "SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|"
    )
    entries: Dict[str, _UmlsEntry] = {}
    for number, line in _iter_lines(path):
        if not line:
            continue
        fields = _split_row(path, number, line, "|", 19, expected)
        if (
            fields[1] not in languages
            or (skip_suppressible and fields[16] in _UMLS_SUPPRESSIBLE)
            or (sources is not None and fields[11] not in sources)
        ):
            continue
        cui, name = fields[0].strip(), fields[14]
        entry = entries.get(cui)
        if entry is None:
            entry = entries[cui] = _UmlsEntry()
        entry.names.append(name)
        if entry.preferred is None and fields[2] == "P" and fields[6] == "Y" and name.strip():
            entry.preferred = name
    return entries


def _add_mrsty_types(path: Path, entries: Dict[str, _UmlsEntry]) -> None:
    """Add the TUIs of MRSTY.RRF to the CUIs that were kept."""
    expected = "6 '|'-separated fields and a trailing '|': CUI|TUI|STN|STY|ATUI|CVF|"
    for number, line in _iter_lines(path):
        if line:
            cui, tui, *_ = _split_row(path, number, line, "|", 7, expected)
            entry = entries.get(cui.strip())
            if entry is not None and tui.strip():
                entry.types.append(tui.strip())


def _umls_concepts(entries: Dict[str, _UmlsEntry]) -> Iterator[Concept]:
    """Hand the entries over one by one, freeing each as it goes."""
    for cui in list(entries):
        entry = entries.pop(cui)
        canonical = entry.preferred or entry.names[0]
        yield Concept(cui, canonical, entry.names, types=entry.types)


# --- OBO (pronto) ----------------------------------------------------------------------

# A definition's cross-reference list: unused here, and some releases (DOID 2016) write
# references with spaces that fastobo rejects. Replacing it by ``[]`` keeps every line
# in place, so parser errors still point at the right line of the file.
_OBO_DEF_XREFS = re.compile(r'^(def:[ \t]*"(?:[^"\\\n]|\\.)*")[^\n]*$', re.MULTILINE)


@registry.misc("sapel.obo_reader.v1")
def obo_reader(
    *,
    synonym_scopes: Sequence[str] = ("EXACT",),
    include_xrefs_as_alt_ids: bool = True,
    id_prefixes: Optional[Sequence[str]] = None,
) -> ConceptReader:
    """OBO ontologies, parsed by pronto (imports are not followed). Obsolete terms are
    skipped; synonyms of ``synonym_scopes`` become aliases; ``alt_id``s and, with
    ``include_xrefs_as_alt_ids``, xrefs (``MESH:D001``) become alternate ids;
    ``id_prefixes`` keeps only terms whose id starts with one of them. Synonyms and
    ids are sorted, as pronto does not keep their file order; the term's namespace is
    its type."""
    scopes = frozenset(scope.upper() for scope in synonym_scopes)
    unknown = sorted(scopes.difference(OBO_SCOPES))
    if unknown:
        raise SapelError(
            Errors.E012.format(
                option="synonym_scopes",
                values=unknown,
                reader=READERS["obo"],
                valid=", ".join(OBO_SCOPES),
            )
        )
    prefixes = tuple(id_prefixes or ())

    def read(path: Union[str, Path]) -> Iterator[Concept]:
        path = Path(path)
        concepts = _obo_concepts(path, scopes, include_xrefs_as_alt_ids, prefixes)
        yield from _named(concepts, path)

    return read


def _obo_concepts(
    path: Path, scopes: frozenset, include_xrefs: bool, prefixes: Tuple[str, ...]
) -> Iterator[Concept]:
    text = _read_text(path)
    lines = text.split("\n")
    if not any(line.strip() and not line.lstrip().startswith("!") for line in lines):
        return
    for term in _parse_obo(path, text, lines).terms():
        if term.obsolete or (prefixes and not term.id.startswith(prefixes)):
            continue
        alt_ids = sorted(term.alternate_ids)
        if include_xrefs:
            alt_ids += sorted(xref.id for xref in term.xrefs)
        yield Concept(
            concept_id=term.id,
            canonical_name=term.name or "",
            aliases=sorted(syn.description for syn in term.synonyms if syn.scope in scopes),
            types=[term.namespace] if term.namespace else [],
            definition=str(term.definition) if term.definition else None,
            alt_ids=alt_ids,
        )


def _parse_obo(path: Path, text: str, lines: List[str]) -> Any:
    """A ``pronto.Ontology`` of ``text``; parser failures become KBReadErrors."""
    import pronto

    data = _OBO_DEF_XREFS.sub(r"\1 []", text).encode("utf-8")
    with warnings.catch_warnings():
        # pronto warns about its own use of a deprecated API while parsing
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pronto")
        try:
            return pronto.Ontology(io.BytesIO(data), import_depth=0)
        except SyntaxError as err:
            number = err.lineno if err.lineno and 0 < err.lineno <= len(lines) else 1
            problem = f"the OBO parser rejected it ({err.msg})"
            raise _row_error(path, number, problem, "OBO 1.4 syntax", lines[number - 1]) from None
        except ValueError as err:
            if str(err).startswith("could not find a parser"):
                expected = "an OBO header (e.g. 'format-version: 1.2') or a [Term] stanza"
                raise _row_error(path, 1, "this is not OBO", expected, lines[0]) from None
            raise KBReadError(Errors.E005.format(path=path, error=err)) from err


# --- scispaCy --------------------------------------------------------------------------

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number",
               float: "number", bool: "boolean", type(None): "null"}
_WHITESPACE = re.compile(r"\s*")


@registry.misc("sapel.scispacy_reader.v1")
def scispacy_reader() -> ConceptReader:
    """scispaCy's KB format: a JSON array, or JSON lines, of objects with
    ``concept_id``, ``canonical_name`` and optional ``aliases``, ``types`` and
    ``definition`` (other keys are ignored)."""

    def read(path: Union[str, Path]) -> Iterator[Concept]:
        path = Path(path)
        yield from _named(_scispacy_concepts(path), path)

    return read


def _scispacy_concepts(path: Path) -> Iterator[Concept]:
    lines = _iter_lines(path)
    for number, line in lines:
        if line.strip():
            break
    else:
        return
    if line.lstrip().startswith("["):
        lines.close()
        records = _json_array_items(path)
    else:
        records = _json_lines(path, chain([(number, line)], lines))
    for number, record, text in records:
        yield _scispacy_concept(path, number, record, text)


def _json_lines(path: Path, lines: Iterable[Tuple[int, str]]) -> Iterator[Tuple[int, Any, str]]:
    """(line number, value, line) for each non-blank line of a JSON-lines file."""
    for number, line in lines:
        if line.strip():
            try:
                yield number, json.loads(line), line
            except json.JSONDecodeError as err:
                problem = f"invalid JSON ({err.msg}, column {err.colno})"
                raise _row_error(path, number, problem, "one JSON object per line", line) from None


def _json_array_items(path: Path) -> Iterator[Tuple[int, Any, str]]:
    """(line number, value, line) for each item of a file holding one JSON array,
    decoded item by item so that errors point at their line."""
    text = _read_text(path)
    lines = text.split("\n")
    decoder = json.JSONDecoder()
    expected = "a JSON array of concept objects"

    def fail(problem: str, at: int) -> KBReadError:
        number = text.count("\n", 0, at) + 1
        return _row_error(path, number, problem, expected, lines[number - 1])

    pos = _WHITESPACE.match(text, text.index("[") + 1).end()
    number, counted = 1, 0
    while not text.startswith("]", pos):
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise fail(f"invalid JSON ({err.msg}, column {err.colno})", err.pos) from None
        number += text.count("\n", counted, pos)
        counted = pos
        yield number, item, lines[number - 1]
        pos = _WHITESPACE.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WHITESPACE.match(text, pos + 1).end()
        elif not text.startswith("]", pos):
            raise fail("missing ',' or ']' after an item", pos)
    after = _WHITESPACE.match(text, pos + 1).end()
    if after < len(text):
        raise fail("text after the closing ']'", after)


def _scispacy_concept(path: Path, number: int, record: Any, text: str) -> Concept:
    """A concept from one scispaCy record; wrongly typed fields are row errors."""
    expected = (
        "a JSON object with a non-empty 'concept_id', a 'canonical_name' string and "
        "optional 'aliases' and 'types' (lists of strings) and 'definition' (string)"
    )

    def fail(problem: str) -> KBReadError:
        return _row_error(path, number, problem, expected, text)

    if not isinstance(record, dict):
        raise fail(f"a JSON {_JSON_TYPES.get(type(record), 'value')} instead of an object")
    concept_id = record.get("concept_id")
    if isinstance(concept_id, int) and not isinstance(concept_id, bool):
        concept_id = str(concept_id)
    if not isinstance(concept_id, str) or not concept_id.strip():
        raise fail("the concept_id is missing or empty")

    def string(key: str) -> str:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f"{key!r} is a JSON {_JSON_TYPES.get(type(value), 'value')}")
        return value or ""

    def strings(key: str) -> List[str]:
        values = record.get(key)
        if values is None:
            return []
        if not isinstance(values, list) or not all(
            value is None or isinstance(value, str) for value in values
        ):
            raise fail(f"{key!r} is not a list of strings")
        return [value for value in values if value]

    return Concept(
        concept_id=concept_id.strip(),
        canonical_name=string("canonical_name"),
        aliases=strings("aliases"),
        types=strings("types"),
        definition=string("definition").strip() or None,
    )
