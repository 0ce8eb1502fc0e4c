"""Concepts and the knowledge base that holds them: the names to embed (the alias
table), id look-ups for evaluation, and a compact column-oriented serialization.

Format version 3 (written now) stores the columns as memory-mapped numpy arrays (see
:mod:`.columns`) and the priors from labelled mentions (:mod:`.priors`) beside them;
version 2 (the same columns, no priors) and version 1 (``concepts.msgpack``, column
lists) are still read, with empty priors."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy
import srsly

from ..errors import Errors, KBReadError, RowOutOfRangeError, SapelError, UnknownConceptError, Warnings
from ..util import (
    DirMarker,
    PathLike,
    atomic_directory,
    has_visible_text,
    read_json,
    write_json,
)
from .columns import ColumnStore
from .names import clean_name, name_key
from .priors import PRIORS_FILE, Priors

FORMAT_VERSION = 3
#: The single column file of format version 1 (read, no longer written).
CONCEPTS_FILE = "concepts.msgpack"
META_FILE = "meta.json"
#: what ``to_disk`` may replace: a directory it wrote (any format version)
KB_MARKER = DirMarker("knowledge base directory", (META_FILE,), ("format_version", "n_concepts"))
_COUNT_DTYPE = "<u4"
_N_EXAMPLES = 5


def format_examples(items: Iterable[Any], *, limit: int = _N_EXAMPLES) -> str:
    """A short, quoted list of the first ``limit`` items for a message."""
    items = list(items)
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def _unique(values: Iterable[str], *, exclude: str = "") -> List[str]:
    """Stripped, non-empty values in first-seen order, without ``exclude``."""
    return list(dict.fromkeys(v for v in (v.strip() for v in values) if v and v != exclude))


@dataclass(slots=True)
class Concept:
    """One concept of a vocabulary: its id, names, semantic types and alternate ids."""

    concept_id: str
    canonical_name: str
    aliases: List[str] = field(default_factory=list)
    types: List[str] = field(default_factory=list)
    definition: Optional[str] = None
    alt_ids: List[str] = field(default_factory=list)
    #: how often the concept was the gold concept of a labelled mention (KB priors;
    #: filled by the KB, ignored by ``add_concept``)
    gold_count: int = 0
    #: mention strings (name keys) annotated with the concept, and how often
    mention_counts: Dict[str, int] = field(default_factory=dict)

    def names(self) -> List[str]:
        """The distinct names, canonical first: whitespace is collapsed, names with
        nothing visible (empty, blank, NUL, zero-width space) are dropped and
        spellings that differ only in case keep the first one."""
        seen = set()
        names = []
        for name in (self.canonical_name, *self.aliases):
            name = clean_name(name)
            key = name.casefold()
            if has_visible_text(name) and key not in seen:
                seen.add(key)
                names.append(name)
        return names


class KnowledgeBase:
    """Concepts in insertion order with their distinct names.

    The alias table (one row per distinct name of each concept) is what an encoder
    embeds and an index searches; ``concept_at(row)`` maps a hit back to its concept.
    Stored concepts are normalised (names as ``Concept.names()``): change them through
    ``add_concept`` and ``add_aliases`` only, so that the cached table stays valid.

    A KB loaded from disk or bytes is backed by a read-only :class:`ColumnStore`
    (memory-mapped from disk): look-ups decode only what they return, and
    ``concept_at`` / ``__getitem__`` build a fresh :class:`Concept` per call. The first
    change (``add_concept``, ``add_aliases``) turns it into Python objects.
    """

    def __init__(self, *, name: str = "kb") -> None:
        self._concepts: List[Concept] = []
        self._rows: Dict[str, int] = {}
        self._store: Optional[ColumnStore] = None
        self._alias_table: Optional[Tuple[List[str], numpy.ndarray]] = None
        #: counts from labelled mentions (empty unless ``add_priors`` was called)
        self.priors = Priors()
        self.meta: Dict[str, Any] = {
            "name": name,
            "format_version": FORMAT_VERSION,
            "sources": [],
            "n_concepts": 0,
            "n_aliases": 0,
            "alias_sources": {},
        }

    @classmethod
    def from_concepts(
        cls, concepts: Iterable[Concept], *, source: str = "<input>", name: str = "kb"
    ) -> "KnowledgeBase":
        """Build a KB, merging repeated concept ids and skipping nameless concepts,
        each reported in one warning; an empty result is an error."""
        kb = cls(name=name)
        merged: Dict[str, None] = {}
        nameless: List[str] = []
        for concept in concepts:
            names = concept.names()
            if not names:
                nameless.append(concept.concept_id)
            elif kb._add(concept, names):
                merged[concept.concept_id.strip()] = None
        if nameless:
            warnings.warn(
                Warnings.W002.format(
                    path=source, count=len(nameless), examples=format_examples(nameless)
                )
            )
        if merged:
            warnings.warn(
                Warnings.W001.format(
                    path=source, count=len(merged), examples=format_examples(merged)
                )
            )
        if not kb:
            raise KBReadError(Errors.E004.format(source=source))
        kb.meta["sources"] = [source]
        return kb

    def add_concept(self, concept: Concept) -> bool:
        """Add a copy of ``concept``, or merge it into the concept with the same id
        (names, types and alt ids united; the first canonical name and the first
        non-empty definition kept). Returns True when it was merged."""
        return self._add(concept, concept.names())

    def _add(self, concept: Concept, names: List[str]) -> bool:
        """``add_concept`` with the concept's ``names()`` already computed."""
        self._materialize()
        concept_id = concept.concept_id.strip()
        if not concept_id:
            raise SapelError(
                Errors.E010.format(concept_id=concept.concept_id, problem="its id is empty")
            )
        if not names:
            raise SapelError(
                Errors.E010.format(concept_id=concept_id, problem="it has no non-empty name")
            )
        definition = (concept.definition or "").strip() or None
        row = self._rows.get(concept_id)
        self._alias_table = None
        if row is None:
            self._rows[concept_id] = len(self._concepts)
            self._concepts.append(
                Concept(
                    concept_id=concept_id,
                    canonical_name=names[0],
                    aliases=names[1:],
                    types=_unique(concept.types),
                    definition=definition,
                    alt_ids=_unique(concept.alt_ids, exclude=concept_id),
                )
            )
            self.meta["n_concepts"] = len(self._concepts)
            self.meta["n_aliases"] += len(names)
            return False
        existing = self._concepts[row]
        self._extend_names(existing, names)
        existing.types = _unique([*existing.types, *concept.types])
        existing.alt_ids = _unique([*existing.alt_ids, *concept.alt_ids], exclude=concept_id)
        if existing.definition is None:
            existing.definition = definition
        return True

    def add_aliases(self, concept_id: str, aliases: Iterable[str], *, source: str) -> int:
        """Add names to a concept (e.g. mentions from a training corpus) and record
        ``source`` in ``meta["alias_sources"]``. Returns the number of new names."""
        self._materialize()
        concept = self[concept_id]
        added = self._extend_names(concept, aliases)
        if added:
            added_names = self.priors.added_names
            added_names[concept.concept_id] = added_names.get(concept.concept_id, 0) + added
        sources = self.meta["alias_sources"]
        sources[source] = sources.get(source, 0) + added
        if added:
            self._alias_table = None
        return added

    def add_priors(self, mentions: Iterable[Tuple[str, str]], *, source: str) -> int:
        """Count labelled ``(mention text, concept id)`` pairs as priors; every id
        must be in the KB (KeyError E008 otherwise). Returns how many were counted."""
        mentions = list(mentions)
        for _, concept_id in mentions:
            self.concept_row(concept_id)
        added = self.priors.add(mentions, source=source)
        self.meta["priors"] = {
            "n_mentions": self.priors.n_mentions,
            "sources": list(self.priors.sources),
        }
        return added

    def name_kind(self, concept: Concept, name: str) -> Optional[str]:
        """Where the name of ``concept`` that equals ``name`` (as ``name_key``) comes
        from: ``"canonical"``, ``"synonym"`` (the vocabulary's), ``"alias"`` (added by
        ``add_aliases``, e.g. a training mention) or None when it has no such name."""
        return self.name_kinds(concept).get(name_key(name))

    def name_kinds(self, concept: Concept) -> Dict[str, str]:
        """The kind (see :meth:`name_kind`) of every name of ``concept``, keyed by its
        ``name_key``: one pass over the names, for callers that want them all."""
        names = concept.names()
        n_vocab = len(names) - self.priors.added_names.get(concept.concept_id, 0)
        # names() keeps one spelling per casefolded name, so the keys are distinct
        return {
            name.casefold(): "canonical" if i == 0 else "synonym" if i < n_vocab else "alias"
            for i, name in enumerate(names)
        }

    def _extend_names(self, concept: Concept, names: Iterable[str]) -> int:
        """Append the names that ``concept`` does not have yet; return how many."""
        keys = {name_key(name) for name in concept.names()}
        added = 0
        for name in names:
            name = clean_name(name)
            key = name.casefold()
            if has_visible_text(name) and key not in keys:
                keys.add(key)
                concept.aliases.append(name)
                added += 1
        self.meta["n_aliases"] += added
        return added

    def _materialize(self) -> None:
        """Turn a store-backed KB into Python objects, before a change."""
        store = self._store
        if store is None:
            return
        self._concepts = [self.concept_at(row) for row in range(store.n)]
        self._rows = {concept.concept_id: row for row, concept in enumerate(self._concepts)}
        self._store = None
        self._alias_table = None

    def __len__(self) -> int:
        return self._store.n if self._store is not None else len(self._concepts)

    def __contains__(self, concept_id: object) -> bool:
        if self._store is not None:
            return isinstance(concept_id, str) and self._store.find(concept_id) is not None
        return concept_id in self._rows

    def __iter__(self) -> Iterator[Concept]:
        if self._store is not None:
            return (self.concept_at(row) for row in range(self._store.n))
        return iter(self._concepts)

    def __getitem__(self, concept_id: str) -> Concept:
        return self.concept_at(self.concept_row(concept_id))

    def __repr__(self) -> str:
        return (
            f"KnowledgeBase(name={self.meta['name']!r}, n_concepts={len(self)}, "
            f"n_aliases={self.meta['n_aliases']})"
        )

    @property
    def concept_ids(self) -> List[str]:
        """Concept ids in insertion order (a row is a position in this list)."""
        if self._store is not None:
            return self._store.concept_ids()
        return list(self._rows)

    def concept_row(self, concept_id: str) -> int:
        """The row (position) of ``concept_id``."""
        if self._store is not None:
            row = self._store.find(concept_id) if isinstance(concept_id, str) else None
        else:
            row = self._rows.get(concept_id)
        if row is None:
            raise UnknownConceptError(
                Errors.E008.format(
                    concept_id=concept_id, name=self.meta["name"], count=len(self)
                )
            )
        return row

    def concept_at(self, row: int) -> Concept:
        """The concept at ``row`` (as found in the alias table)."""
        if not 0 <= row < len(self):
            raise RowOutOfRangeError(Errors.E009.format(row=row, name=self.meta["name"], count=len(self)))
        store = self._store
        if store is None:
            concept = self._concepts[row]
        else:
            names = store.names(row)
            concept = Concept(
                store.concept_id(row),
                names[0],
                names[1:],
                store.types(row),
                store.definition(row),
                store.alt_ids(row),
            )
        if self.priors:
            concept.gold_count = self.priors.concept_count(concept.concept_id)
            concept.mention_counts = self.priors.strings_of(concept.concept_id)
        return concept

    def concept_id_at(self, row: int) -> str:
        """The id of the concept at ``row``, without building the whole concept."""
        if self._store is not None and 0 <= row < self._store.n:
            return self._store.concept_id(row)
        return self.concept_at(row).concept_id

    def id_set(self, concept_id: str) -> set:
        """The primary id and the alternate ids of a concept, for evaluation."""
        concept = self[concept_id]
        return {concept.concept_id, *concept.alt_ids}

    def alias_table(self) -> Tuple[List[str], numpy.ndarray]:
        """All distinct names of all concepts (concepts in insertion order, names in
        ``Concept.names()`` order) and, per name, the int32 row of its concept. Cached
        until the KB changes; treat both as read-only."""
        if self._alias_table is None and self._store is not None:
            self._alias_table = (self._store.all_names(), self.alias_concepts())
        if self._alias_table is None:
            names: List[str] = []
            counts = numpy.empty(len(self._concepts), dtype=numpy.int64)
            for row, concept in enumerate(self._concepts):
                # stored concepts are normalised: their names() are exactly these
                names.append(concept.canonical_name)
                names.extend(concept.aliases)
                counts[row] = 1 + len(concept.aliases)
            rows = numpy.repeat(numpy.arange(len(counts), dtype=numpy.int32), counts)
            rows.flags.writeable = False
            self._alias_table = (names, rows)
        return self._alias_table

    def alias_concepts(self) -> numpy.ndarray:
        """The int32 concept row of each alias row (``alias_table()[1]``) without
        decoding the names: what a search needs, memory-mapped for a loaded KB."""
        if self._store is not None:
            return self._store.arrays["alias_concepts"]
        return self.alias_table()[1]

    @property
    def n_names(self) -> int:
        """The number of alias rows (distinct names of all concepts)."""
        return self._store.n_names if self._store is not None else len(self.alias_table()[0])

    # --- serialization ------------------------------------------------------------

    def _arrays(self) -> Dict[str, numpy.ndarray]:
        """The KB as column-store arrays (format version 2)."""
        if self._store is not None:
            return self._store.arrays
        concepts = self._concepts
        return ColumnStore.build(
            self.concept_ids,
            [[c.canonical_name, *c.aliases] for c in concepts],
            [c.definition for c in concepts],
            [c.types for c in concepts],
            [c.alt_ids for c in concepts],
        )

    @classmethod
    def _from_arrays(
        cls, arrays: Dict[str, numpy.ndarray], meta: Dict[str, Any], *, path: str
    ) -> "KnowledgeBase":
        """A store-backed KB over ``arrays``, checking them against each other."""
        try:
            store = ColumnStore(arrays)
            if meta.get("n_concepts", store.n) != store.n:
                raise ValueError(
                    f"meta says {meta['n_concepts']} concepts, the columns hold {store.n}"
                )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise KBReadError(Errors.E006.format(path=path, error=_describe(err))) from err
        kb = cls(name=str(meta.get("name", "kb")))
        kb.meta.update(meta)
        kb.meta.update(
            format_version=FORMAT_VERSION, n_concepts=store.n, n_aliases=store.n_names
        )
        kb._store = store
        return kb

    @classmethod
    def _from_columns(
        cls, columns: Any, meta: Dict[str, Any], *, path: str
    ) -> "KnowledgeBase":
        """Rebuild a KB from format-version-1 columns (flat lists plus uint32 counts),
        checking that they are consistent."""
        try:
            _check_version(columns["format_version"], path=path)
            ids = list(columns["ids"])
            n = len(ids)
            names = _split(columns["names"], columns["name_counts"], n, "names")
            types = _split(columns["types"], columns["type_counts"], n, "types")
            alt_ids = _split(columns["alt_ids"], columns["alt_id_counts"], n, "alt_ids")
            definitions = list(columns["definitions"])
            if len(definitions) != n:
                raise ValueError(f"{len(definitions)} definitions for {n} concepts")
            if meta.get("n_concepts", n) != n:
                raise ValueError(f"meta says {meta['n_concepts']} concepts, the file has {n}")
            kb = cls(name=str(meta.get("name", "kb")))
            kb.meta.update(meta)
            kb._rows = {concept_id: row for row, concept_id in enumerate(ids)}
            if len(kb._rows) != n:
                raise ValueError("repeated concept ids")
            kb._concepts = [
                Concept(ids[i], names[i][0], names[i][1:], types[i], definitions[i], alt_ids[i])
                for i in range(n)
            ]
        except (KeyError, TypeError, ValueError, IndexError) as err:
            if isinstance(err, KBReadError):
                raise
            raise KBReadError(Errors.E006.format(path=path, error=_describe(err))) from err
        kb.meta.update(
            format_version=FORMAT_VERSION,
            n_concepts=n,
            n_aliases=sum(len(concept_names) for concept_names in names),
        )
        return kb

    def to_bytes(self) -> bytes:
        """The KB (column arrays as bytes, and meta) as one msgpack blob."""
        columns: Dict[str, Any] = ColumnStore.to_bytes_columns(self._arrays())
        columns["format_version"] = FORMAT_VERSION
        return srsly.msgpack_dumps(
            {"meta": self.meta, "concepts": columns, "priors": self.priors.to_dict()}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "KnowledgeBase":
        """Load a KB written by ``to_bytes`` (format version 1 or 2)."""
        path = "<bytes>"
        msg = _loads(data, path=path)
        if not isinstance(msg, dict) or not isinstance(msg.get("meta"), dict):
            raise KBReadError(Errors.E006.format(path=path, error="no 'meta' section"))
        columns = msg.get("concepts")
        if not isinstance(columns, dict):
            raise KBReadError(Errors.E006.format(path=path, error="no 'concepts' section"))
        _check_version(columns.get("format_version"), path=path)
        if columns["format_version"] == 1:
            kb = cls._from_columns(columns, msg["meta"], path=path)
        else:
            try:
                arrays = ColumnStore.from_bytes_columns(columns)
            except (KeyError, ValueError) as err:
                raise KBReadError(Errors.E006.format(path=path, error=_describe(err))) from err
            kb = cls._from_arrays(arrays, msg["meta"], path=path)
        if "priors" in msg:
            kb._set_priors(msg["priors"], path=path)
        return kb

    def _set_priors(self, data: Any, *, path: str) -> None:
        """Adopt priors read from ``path``, checking that their ids are in the KB."""
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            priors = Priors.from_dict(data)
            unknown = [cid for cid in priors.concept_counts if cid not in self]
            if unknown:
                raise ValueError(
                    f"{len(unknown)} concept id(s) not in the KB, e.g. {format_examples(unknown)}"
                )
        except (KeyError, TypeError, ValueError) as err:
            raise KBReadError(Errors.E006.format(path=path, error=_describe(err))) from err
        self.priors = priors

    def to_disk(self, path: PathLike) -> None:
        """Write the column arrays (``*.npy``) and ``meta.json`` into the directory
        ``path``, atomically: an interrupted write leaves a previous directory
        untouched."""
        arrays = self._arrays()
        with atomic_directory(path, KB_MARKER) as tmp:
            ColumnStore.save(arrays, tmp)
            write_json(tmp / PRIORS_FILE, self.priors.to_dict())
            write_json(tmp / META_FILE, self.meta)

    @classmethod
    def from_disk(cls, path: PathLike, *, mmap: bool = True) -> "KnowledgeBase":
        """Load a KB directory written by ``to_disk`` (format version 2, the arrays
        memory-mapped unless ``mmap=False``) or by an older version (1)."""
        path = Path(path)
        meta_path = path / META_FILE
        for file in (path, meta_path):
            if not file.exists():
                raise KBReadError(Errors.E001.format(path=file))
        try:
            meta = read_json(meta_path)
        except ValueError as err:
            raise KBReadError(Errors.E006.format(path=meta_path, error=_describe(err))) from err
        if not isinstance(meta, dict):
            raise KBReadError(Errors.E006.format(path=meta_path, error="not a JSON object"))
        _check_version(meta.get("format_version"), path=str(meta_path))
        if meta["format_version"] == 1:
            concepts_path = path / CONCEPTS_FILE
            if not concepts_path.exists():
                raise KBReadError(Errors.E001.format(path=concepts_path))
            columns = _loads(concepts_path.read_bytes(), path=str(concepts_path))
            return cls._from_columns(columns, meta, path=str(concepts_path))
        for file in ColumnStore.files(path):
            if not file.exists():
                raise KBReadError(Errors.E001.format(path=file))
        try:
            arrays = ColumnStore.load(path, mmap=mmap)
        except (OSError, ValueError, EOFError) as err:
            raise KBReadError(Errors.E006.format(path=path, error=_describe(err))) from err
        kb = cls._from_arrays(arrays, meta, path=str(path))
        priors_path = path / PRIORS_FILE
        if meta["format_version"] >= 3 and not priors_path.exists():
            raise KBReadError(Errors.E001.format(path=priors_path))
        if priors_path.exists():
            try:
                data = read_json(priors_path)
            except ValueError as err:
                raise KBReadError(
                    Errors.E006.format(path=priors_path, error=_describe(err))
                ) from err
            kb._set_priors(data, path=str(priors_path))
        return kb


def _split(flat: Any, counts: Any, n: int, what: str) -> List[List[str]]:
    """Cut the flat column ``flat`` into ``n`` lists of the given sizes."""
    sizes = numpy.frombuffer(counts, dtype=_COUNT_DTYPE)
    flat = list(flat)
    if len(sizes) != n or int(sizes.sum()) != len(flat):
        raise ValueError(f"the {what} column does not match its counts")
    if what == "names" and n and int(sizes.min()) == 0:
        raise ValueError("a concept without names")
    ends = numpy.cumsum(sizes).tolist()
    return [flat[end - size : end] for end, size in zip(ends, sizes.tolist())]


def _check_version(found: Any, *, path: str) -> None:
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise KBReadError(Errors.E006.format(path=path, error=f"format version {found!r}"))
    if found > FORMAT_VERSION:
        raise KBReadError(
            Errors.E007.format(path=path, found=found, supported=FORMAT_VERSION)
        )


def _loads(data: bytes, *, path: str) -> Any:
    """msgpack-decode ``data``; truncated or corrupt input is a KBReadError."""
    try:
        return srsly.msgpack_loads(data)
    except (ValueError, TypeError) as err:
        raise KBReadError(Errors.E006.format(path=path, error=_describe(err))) from err


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
