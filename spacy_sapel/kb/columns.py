"""The column store behind a loaded knowledge base (KB format version 2).

All strings of a KB (concept ids, names, definitions, types, alternate ids) live in one
UTF-8 blob cut by int64 offsets; per-concept ranges and the alias -> concept table are
int arrays. Saved as ``.npy`` files they are memory-mapped on load, so opening a KB of
millions of names costs milliseconds and no Python objects: a
:class:`~spacy_sapel.kb.Concept` is decoded only when asked for, and worker processes
share the pages.

String sections, in this order: ids [n], names [N], definitions [n] ("" = none),
types [T], alt_ids [A].
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy

#: The arrays of a column store, saved as ``<name>.npy``.
ARRAYS = (
    "strings",  # uint8: the UTF-8 blob
    "offsets",  # int64 [S + 1]: string i is strings[offsets[i]:offsets[i + 1]]
    "name_starts",  # int64 [n + 1]: names of concept r are name rows [s[r], s[r + 1])
    "type_starts",  # int64 [n + 1]
    "alt_id_starts",  # int64 [n + 1]
    "alias_concepts",  # int32 [N]: the concept row of each name row
    "id_order",  # int32 [n]: concept rows sorted by concept id, for look-ups
)
_DTYPES = {
    "strings": numpy.uint8,
    "offsets": numpy.int64,
    "name_starts": numpy.int64,
    "type_starts": numpy.int64,
    "alt_id_starts": numpy.int64,
    "alias_concepts": numpy.int32,
    "id_order": numpy.int32,
}


class ColumnStore:
    """Read-only columns of a KB; see the module docstring for the layout."""

    def __init__(self, arrays: Mapping[str, numpy.ndarray]) -> None:
        """Adopt ``arrays`` (as from :meth:`build` or :meth:`load`); a ValueError
        says which one is inconsistent."""
        missing = [name for name in ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)}")
        for name in ARRAYS:
            array = arrays[name]
            if array.dtype != _DTYPES[name] or array.ndim != 1:
                raise ValueError(
                    f"column {name!r} has dtype {array.dtype} and {array.ndim} dimension(s), "
                    f"expected a 1-D {numpy.dtype(_DTYPES[name])} array"
                )
        self.arrays = {name: arrays[name] for name in ARRAYS}
        self.n = len(arrays["name_starts"]) - 1
        for name in ("name_starts", "type_starts", "alt_id_starts"):
            _check_starts(arrays[name], name)
        self.n_names = int(arrays["name_starts"][-1])
        self.n_types = int(arrays["type_starts"][-1])
        self.n_alt_ids = int(arrays["alt_id_starts"][-1])
        for name in ("type_starts", "alt_id_starts"):
            if len(arrays[name]) != self.n + 1:
                raise ValueError(f"column {name!r} does not have one entry per concept")
        if self.n and int(numpy.diff(arrays["name_starts"]).min()) < 1:
            raise ValueError("a concept without names")
        _check_starts(arrays["offsets"], "offsets")
        n_strings = 2 * self.n + self.n_names + self.n_types + self.n_alt_ids
        if len(arrays["offsets"]) != n_strings + 1:
            raise ValueError(
                f"the string table holds {len(arrays['offsets']) - 1} strings, "
                f"the counts need {n_strings}"
            )
        if int(arrays["offsets"][-1]) != len(arrays["strings"]):
            raise ValueError("the string blob is shorter or longer than its offsets say")
        expected = numpy.repeat(
            numpy.arange(self.n, dtype=numpy.int32), numpy.diff(arrays["name_starts"])
        )
        if not numpy.array_equal(arrays["alias_concepts"], expected):
            raise ValueError("the alias -> concept table does not match the name counts")
        if len(arrays["id_order"]) != self.n:
            raise ValueError("column 'id_order' does not have one entry per concept")
        self._blob = arrays["strings"]
        self._offsets = arrays["offsets"]
        self._ids = _Section(self, 0, self.n)
        self._sorted_ids = _SortedIds(self._ids, arrays["id_order"])

    # --- building and saving ------------------------------------------------------
    @staticmethod
    def build(
        ids: Sequence[str],
        names: Sequence[Sequence[str]],
        definitions: Sequence[Optional[str]],
        types: Sequence[Sequence[str]],
        alt_ids: Sequence[Sequence[str]],
    ) -> Dict[str, numpy.ndarray]:
        """The arrays for concepts given column-wise (one entry per concept)."""
        strings: List[str] = list(ids)
        for values in names:
            strings.extend(values)
        strings.extend(definition or "" for definition in definitions)
        for values in types:
            strings.extend(values)
        for values in alt_ids:
            strings.extend(values)
        encoded = [s.encode("utf8") for s in strings]
        offsets = numpy.zeros(len(encoded) + 1, dtype=numpy.int64)
        numpy.cumsum([len(b) for b in encoded], out=offsets[1:])
        name_counts = numpy.fromiter((len(v) for v in names), numpy.int64, len(names))
        order = sorted(range(len(ids)), key=ids.__getitem__)
        return {
            "strings": numpy.frombuffer(b"".join(encoded), dtype=numpy.uint8),
            "offsets": offsets,
            "name_starts": _starts(name_counts),
            "type_starts": _starts([len(v) for v in types]),
            "alt_id_starts": _starts([len(v) for v in alt_ids]),
            "alias_concepts": numpy.repeat(
                numpy.arange(len(ids), dtype=numpy.int32), name_counts
            ),
            "id_order": numpy.asarray(order, dtype=numpy.int32),
        }

    @staticmethod
    def save(arrays: Mapping[str, numpy.ndarray], path: Path) -> None:
        """Write each array as ``path / <name>.npy``."""
        for name in ARRAYS:
            numpy.save(path / f"{name}.npy", numpy.ascontiguousarray(arrays[name]))

    @staticmethod
    def files(path: Path) -> List[Path]:
        return [path / f"{name}.npy" for name in ARRAYS]

    @staticmethod
    def load(path: Path, *, mmap: bool = True) -> Dict[str, numpy.ndarray]:
        """Read (memory-map) the arrays written by :meth:`save`. An empty array
        cannot be mapped and is read."""
        arrays = {}
        for name in ARRAYS:
            file = path / f"{name}.npy"
            mode = "r" if mmap and file.stat().st_size > 128 else None
            arrays[name] = numpy.load(file, mmap_mode=mode, allow_pickle=False)
        return arrays

    @staticmethod
    def to_bytes_columns(arrays: Mapping[str, numpy.ndarray]) -> Dict[str, bytes]:
        return {name: numpy.ascontiguousarray(arrays[name]).tobytes() for name in ARRAYS}

    @staticmethod
    def from_bytes_columns(columns: Mapping[str, Any]) -> Dict[str, numpy.ndarray]:
        arrays = {}
        for name in ARRAYS:
            data = columns[name]
            if not isinstance(data, bytes):
                raise ValueError(f"column {name!r} is not bytes")
            itemsize = numpy.dtype(_DTYPES[name]).itemsize
            if len(data) % itemsize:
                raise ValueError(f"column {name!r} has a truncated last item")
            arrays[name] = numpy.frombuffer(data, dtype=_DTYPES[name])
        return arrays

    # --- reading ------------------------------------------------------------------
    def string(self, i: int) -> str:
        start, end = self._offsets[i], self._offsets[i + 1]
        return self._blob[start:end].tobytes().decode("utf8")

    def strings(self, start: int, stop: int) -> List[str]:
        """Strings ``start`` to ``stop`` (exclusive), decoded with one copy."""
        if stop <= start:
            return []
        bounds = self._offsets[start : stop + 1]
        base = int(bounds[0])
        data = self._blob[base : int(bounds[-1])].tobytes()
        cuts = (bounds - base).tolist()
        return [data[a:b].decode("utf8") for a, b in zip(cuts, cuts[1:])]

    def concept_id(self, row: int) -> str:
        return self.string(row)

    def concept_ids(self) -> List[str]:
        return self.strings(0, self.n)

    def names(self, row: int) -> List[str]:
        starts = self.arrays["name_starts"]
        return self.strings(self.n + int(starts[row]), self.n + int(starts[row + 1]))

    def all_names(self) -> List[str]:
        return self.strings(self.n, self.n + self.n_names)

    def definition(self, row: int) -> Optional[str]:
        return self.string(self.n + self.n_names + row) or None

    def types(self, row: int) -> List[str]:
        base = 2 * self.n + self.n_names
        starts = self.arrays["type_starts"]
        return self.strings(base + int(starts[row]), base + int(starts[row + 1]))

    def alt_ids(self, row: int) -> List[str]:
        base = 2 * self.n + self.n_names + self.n_types
        starts = self.arrays["alt_id_starts"]
        return self.strings(base + int(starts[row]), base + int(starts[row + 1]))

    def find(self, concept_id: str) -> Optional[int]:
        """The row of ``concept_id``, or None (binary search over the sorted ids)."""
        i = bisect.bisect_left(self._sorted_ids, concept_id)
        if i < self.n and self._sorted_ids[i] == concept_id:
            return int(self.arrays["id_order"][i])
        return None


class _Section:
    """Strings ``start`` .. ``start + length`` of a store as a read-only sequence."""

    def __init__(self, store: ColumnStore, start: int, length: int) -> None:
        self.store, self.start, self.length = store, start, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> str:
        return self.store.string(self.start + i)


class _SortedIds:
    """The concept ids in sorted order, decoded on access (for ``bisect``)."""

    def __init__(self, ids: _Section, order: numpy.ndarray) -> None:
        self.ids, self.order = ids, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> str:
        return self.ids[int(self.order[i])]


def _starts(counts: Iterable[int]) -> numpy.ndarray:
    counts = numpy.asarray(list(counts) if not isinstance(counts, numpy.ndarray) else counts,
                           dtype=numpy.int64)
    starts = numpy.zeros(len(counts) + 1, dtype=numpy.int64)
    numpy.cumsum(counts, out=starts[1:])
    return starts


def _check_starts(starts: numpy.ndarray, name: str) -> None:
    if len(starts) < 1 or int(starts[0]) != 0 or (numpy.diff(starts) < 0).any():
        raise ValueError(f"column {name!r} is not a list of increasing offsets from 0")
