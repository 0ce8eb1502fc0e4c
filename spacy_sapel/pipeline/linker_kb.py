"""The linker's searchable knowledge base: a KB, the encoder that embedded its names,
and the dense index over those embeddings, built, searched and saved together."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import srsly
from spacy.util import SimpleFrozenList, to_bytes, to_disk

from ..encoder import SapEncoder
from ..encoder.runtime_check import runtimes_agree
from ..errors import Errors, IndexLoadError, SapelError
from ..index import DenseIndex
from ..index.sparse import SparseIndex
from ..kb import KnowledgeBase
from ..util import (
    DirMarker,
    PathLike,
    atomic_directory,
    check_int_option,
    has_visible_text,
    json_dumps,
    write_json,
)

FORMAT_VERSION = 1
#: the parts a KB bundle cannot do without, each a folder (and a key of its bytes)
PARTS = ("encoder", "kb", "index")
SPARSE_PART = "sparse"
#: the bundle's metadata (formats, device): ``exclude=["meta"]`` leaves it out
META_PART = "meta"
META_FILE = "meta.json"
#: what ``to_disk`` may replace: a KB directory written by ``build-kb`` (its meta.json)
KB_DIR_MARKER = DirMarker(
    "KB directory", ("meta.json",), ("format_version", "kb", "index", "encoder")
)

Candidates = List[Tuple[str, float]]
#: embeds the names for :meth:`LinkerKB.build`: one row per name, as ``SapEncoder.encode``
Embedder = Callable[[Sequence[str]], np.ndarray]
#: allowed KB types of a mention (None: any concept)
TypeSet = Optional[FrozenSet[str]]


@dataclass
class LinkerKB:
    """Everything the linker needs to turn mention strings into ranked concept ids."""

    encoder: SapEncoder
    kb: KnowledgeBase
    index: DenseIndex
    #: optional character n-gram index over the same names, for hybrid search
    sparse: Optional[SparseIndex] = None
    #: where the encoder and index were asked to run when loaded ("auto", "cpu", ...):
    #: saved, so that a pipeline loads as it was set up
    device: str = "auto"
    _type_masks: Dict[FrozenSet[str], np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _alias_masks: Dict[FrozenSet[str], np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def build(
        cls,
        kb: KnowledgeBase,
        encoder: SapEncoder,
        *,
        index_type: str = "flat",
        index_options: Optional[Dict[str, Any]] = None,
        sparse: bool = False,
        show_progress: bool = False,
        embed: Optional[Embedder] = None,
    ) -> "LinkerKB":
        """Embed every distinct name of every concept and index the embeddings; with
        ``sparse``, also index their character n-grams for hybrid search. The index
        options are checked before any name is encoded. ``embed`` embeds the names
        as ``encoder.encode`` does, elsewhere: default ``encoder`` in this process;
        :func:`spacy_sapel.distributed.ray_embedder` spreads it over Ray actors."""
        index = cls.plan_index(kb, encoder, index_type=index_type, index_options=index_options)
        names, _ = kb.alias_table()
        if embed is None:
            vectors = encoder.encode(names, show_progress=show_progress)
        else:
            vectors = np.asarray(embed(names))
            if vectors.shape != (len(names), encoder.dim):
                raise SapelError(
                    Errors.E364.format(
                        embed=embed, shape=vectors.shape, n=len(names), dim=encoder.dim
                    )
                )
        index.build(vectors, fingerprint=encoder.fingerprint)
        linker_kb = cls(encoder=encoder, kb=kb, index=index)
        if sparse:
            linker_kb.add_sparse_index()
        return linker_kb

    @staticmethod
    def plan_index(
        kb: KnowledgeBase,
        encoder: SapEncoder,
        *,
        index_type: str = "flat",
        index_options: Optional[Dict[str, Any]] = None,
    ) -> DenseIndex:
        """The unbuilt index for ``kb``'s names, its options checked against the KB's
        size and the encoder's dimension (unknown names, a PCA or IVF too big for the
        data, a bad factory string), so that a mistake shows before the encoding."""
        if len(kb) == 0:
            raise SapelError(Errors.E004.format(source=kb.meta.get("name", "kb")))
        index = DenseIndex.from_options(index_type, index_options)
        index.check_build(kb.n_names, encoder.dim)
        return index

    @staticmethod
    def estimate_bytes(
        kb: KnowledgeBase, encoder: SapEncoder, index: DenseIndex, *, sparse: bool = False
    ) -> int:
        """A rough upper estimate of the disk space :meth:`to_disk` needs (encoder
        weights, KB strings and arrays, index vectors), for checking before a build."""
        names, _ = kb.alias_table()
        name_bytes = sum(len(name.encode("utf8")) for name in names)
        weights = sum(t.numel() * t.element_size() for t in encoder.model.parameters())
        size = weights + 2 * name_bytes + 32 * (len(kb) + len(names))
        size += index.estimate_bytes(len(names), encoder.dim)
        if sparse:
            size += 16 * name_bytes
        return int(size)

    def add_sparse_index(self, *, ngram_range: Tuple[int, int] = (2, 3)) -> None:
        """Index the KB's names by character n-grams (TF-IDF), for ``sparse_weight``."""
        sparse = SparseIndex(ngram_range=ngram_range)
        sparse.build(self.kb.alias_table()[0])
        self.sparse = sparse

    def check(self) -> None:
        """Refuse an index that was not built from this KB with this encoder."""
        n_aliases = self.kb.n_names
        if self.index.ntotal != n_aliases:
            raise IndexLoadError(
                Errors.E301.format(ntotal=self.index.ntotal, n_aliases=n_aliases)
            )
        if self.index.dim != self.encoder.dim:
            raise IndexLoadError(
                Errors.E302.format(
                    what="dimension", index=self.index.dim, encoder=self.encoder.dim
                )
            )
        if self.sparse is not None and self.sparse.ntotal != n_aliases:
            raise IndexLoadError(
                Errors.E301.format(ntotal=self.sparse.ntotal, n_aliases=n_aliases)
            )
        fingerprint = self.index.meta.get("fingerprint")
        # same weights, another runtime: accepted when the two runtimes agree on a
        # few of the KB's names (else E325)
        if fingerprint != self.encoder.fingerprint and not runtimes_agree(
            self.encoder, fingerprint, self.kb.alias_table()[0]
        ):
            raise IndexLoadError(
                Errors.E302.format(
                    what="encoder fingerprint",
                    index=self.index.meta.get("fingerprint"),
                    encoder=self.encoder.fingerprint,
                )
            )

    def search(
        self,
        mentions: Sequence[str],
        *,
        top_k: int,
        alias_k: Optional[int] = None,
        batch_size: Optional[int] = None,
        sparse_weight: float = 0.0,
        types: Optional[Sequence[TypeSet]] = None,
    ) -> List[Candidates]:
        """Rank concepts for each mention string. A concept's dense score is the best
        cosine similarity between the mention and any of its names; with
        ``sparse_weight`` w > 0 the score is ``(1 - w) * dense + w * sparse`` (the
        character n-gram cosine; a concept found by one retriever only gets the other's
        lowest returned score for that mention). ``types`` gives, per mention, the KB
        types its concepts must have (None: any); the filter applies before the top-k
        is taken. Identical mention strings are encoded and searched once; a mention
        with nothing visible (empty, blank, NUL, zero-width space) gets no candidates."""
        check_int_option("top_k", top_k)
        if not 0.0 <= sparse_weight <= 1.0:
            raise SapelError(Errors.E310.format(value=sparse_weight))
        if sparse_weight > 0 and self.sparse is None:
            raise SapelError(Errors.E311)
        queries = list(zip(mentions, types if types is not None else [None] * len(mentions)))
        unique = [query for query in dict.fromkeys(queries) if has_visible_text(query[0])]
        if not unique:
            return [[] for _ in queries]
        texts = list(dict.fromkeys(text for text, _ in unique))
        position = {text: i for i, text in enumerate(texts)}
        vectors = self.encoder.encode(texts, batch_size=batch_size)
        # Several names of one concept can fill the neighbour list, so search more
        # alias rows than concepts wanted; a type filter may need more still. Where
        # the index can filter (faiss on the CPU), the dense search itself keeps to
        # the allowed names, else the filter applies afterwards and the search widens.
        k = min(alias_k or max(8 * top_k, 32), self.index.ntotal)
        select = self.index.supports_selection
        ranked: Dict[Tuple[str, TypeSet], Candidates] = {}
        pending = unique
        while pending:
            wanted = list(dict.fromkeys(text for text, _ in pending))
            rows_of = {text: i for i, text in enumerate(wanted)}
            dense, exhausted = self._dense_search(vectors, position, pending, k, select=select)
            lexical = (
                self._best_per_concept(*self.sparse.search(wanted, k))
                if sparse_weight > 0 and self.sparse is not None
                else None
            )
            retry = []
            for text, type_set in pending:
                i = rows_of[text]
                found = self._fuse(
                    dense[(text, type_set)], lexical[i] if lexical is not None else None,
                    sparse_weight, type_set,
                )
                if (
                    len(found) < top_k
                    and type_set is not None
                    and k < self.index.ntotal
                    and not exhausted[(text, type_set)]
                ):
                    retry.append((text, type_set))
                    continue
                ranked[(text, type_set)] = [
                    (self.kb.concept_id_at(row), float(score)) for row, score in found[:top_k]
                ]
            pending, k = retry, min(4 * k, self.index.ntotal)
        return [ranked.get(query, []) for query in queries]

    def _dense_search(
        self,
        vectors: np.ndarray,
        position: Dict[str, int],
        queries: Sequence[Tuple[str, TypeSet]],
        k: int,
        *,
        select: bool,
    ) -> Tuple[Dict[Tuple[str, TypeSet], Dict[int, float]], Dict[Tuple[str, TypeSet], bool]]:
        """Per query, the best dense score of each concept among its ``k`` nearest
        names, with ``select`` among the names of allowed concepts only (one search
        per type set), and whether that search ran out of allowed names (a larger
        ``k`` would find no more)."""
        groups: Dict[TypeSet, Dict[str, None]] = {}
        for text, type_set in queries:
            groups.setdefault(type_set if select else None, {})[text] = None
        found: Dict[Tuple[str, TypeSet], Dict[int, float]] = {}
        exhausted: Dict[Tuple[str, TypeSet], bool] = {}
        for type_set, texts in groups.items():
            allowed = None if type_set is None else self._alias_mask(type_set)
            scores, rows = self.index.search(
                vectors[[position[t] for t in texts]], k, allowed=allowed
            )
            for text, best, row in zip(texts, self._best_per_concept(scores, rows), rows):
                found[(text, type_set)] = best
                exhausted[(text, type_set)] = allowed is not None and bool((row < 0).any())
        key = (lambda query: query) if select else (lambda query: (query[0], None))
        return (
            {query: found[key(query)] for query in queries},
            {query: exhausted[key(query)] for query in queries},
        )

    def _alias_mask(self, type_set: FrozenSet[str]) -> np.ndarray:
        """Which names (index rows) belong to a concept of one of ``type_set``'s types."""
        mask = self._alias_masks.get(type_set)
        if mask is None:
            mask = self._type_mask(type_set)[self.kb.alias_concepts()]
            self._alias_masks[type_set] = mask
        return mask

    def _best_per_concept(self, scores: np.ndarray, rows: np.ndarray) -> List[Dict[int, float]]:
        alias_concepts = self.kb.alias_concepts()
        result = []
        for score_row, alias_row in zip(scores.tolist(), rows.tolist()):
            best: Dict[int, float] = {}
            for score, row in zip(score_row, alias_row):
                if row < 0:
                    continue
                concept = int(alias_concepts[row])
                if score > best.get(concept, -np.inf):
                    best[concept] = score
            result.append(best)
        return result

    def _fuse(
        self,
        dense: Dict[int, float],
        lexical: Optional[Dict[int, float]],
        weight: float,
        type_set: TypeSet,
    ) -> List[Tuple[int, float]]:
        """Concept rows by fused score, best first; ties broken by KB order."""
        if lexical is None or weight == 0:
            combined = dense
        else:
            dense_floor = min(dense.values(), default=0.0)
            lexical_floor = min(lexical.values(), default=0.0)
            combined = {
                c: (1 - weight) * dense.get(c, dense_floor) + weight * lexical.get(c, lexical_floor)
                for c in dense.keys() | lexical.keys()
            }
        if type_set is not None:
            mask = self._type_mask(type_set)
            combined = {c: s for c, s in combined.items() if mask[c]}
        return sorted(combined.items(), key=lambda item: (-item[1], item[0]))

    def _type_mask(self, type_set: FrozenSet[str]) -> np.ndarray:
        """Which concepts have one of ``type_set``'s types (computed once per set)."""
        mask = self._type_masks.get(type_set)
        if mask is None:
            mask = np.fromiter(
                (not type_set.isdisjoint(concept.types) for concept in self.kb),
                dtype=bool,
                count=len(self.kb),
            )
            self._type_masks[type_set] = mask
        return mask

    def to_disk(
        self,
        path: PathLike,
        *,
        overwrite: bool = False,
        exclude: Iterable[str] = SimpleFrozenList(),
    ) -> None:
        """Write ``encoder/``, ``kb/``, ``index/``, ``sparse/`` (with a sparse index)
        and ``meta.json`` atomically, all but the parts named in ``exclude``. An
        existing ``path`` is replaced only if it is a KB directory (or empty), unless
        ``overwrite``."""
        with atomic_directory(path, KB_DIR_MARKER, overwrite=overwrite) as tmp:
            self.write_parts(tmp, exclude=exclude)

    def write_parts(self, path: PathLike, *, exclude: Iterable[str] = SimpleFrozenList()) -> None:
        """Write the parts of :meth:`to_disk` into the directory ``path``, next to
        what it holds (each part atomically): a pipeline's linker directory keeps
        them beside its ``cfg``."""
        writers: Dict[str, Callable[[Path], None]] = {
            "encoder": self.encoder.to_disk,
            "kb": self.kb.to_disk,
            "index": self.index.to_disk,
        }
        if self.sparse is not None:
            writers[SPARSE_PART] = self.sparse.to_disk
        if META_PART not in exclude:  # the part is "meta", as for reading and bytes
            writers[META_FILE] = lambda p: write_json(p, self.meta)
        to_disk(path, writers, exclude)

    def part_names(self) -> List[str]:
        """The names of the files and folders :meth:`write_parts` writes."""
        return [*PARTS, *([SPARSE_PART] if self.sparse is not None else []), META_FILE]

    @classmethod
    def from_disk(
        cls,
        path: PathLike,
        *,
        exclude: Iterable[str] = SimpleFrozenList(),
        keep: Optional["LinkerKB"] = None,
        device: Optional[str] = None,
        runtime: Optional[str] = None,
    ) -> "LinkerKB":
        """Load a directory written by :meth:`to_disk` (or :meth:`write_parts`).
        ``device``: where the encoder and index run (default: the device saved in
        ``meta.json``, else "auto"; see :func:`part_devices`); ``runtime``: the encoder runtime to search with
        (default: the one saved with the encoder). The parts named in ``exclude`` are
        not read: they are ``keep``'s (E360 when there is no ``keep``)."""
        path = Path(path)
        if not path.is_dir():
            raise IndexLoadError(Errors.E304.format(path=path))
        missing = [part for part in PARTS if part not in exclude and not (path / part).exists()]
        if missing:
            raise IndexLoadError(Errors.E305.format(path=path, missing=", ".join(missing)))
        meta: Dict[str, Any] = {}
        if META_PART not in exclude and (path / META_FILE).exists():
            meta = _read_meta(path / META_FILE)
        loaders: Dict[str, Callable[[str], Any]] = {
            "encoder": lambda dev: SapEncoder.from_disk(path / "encoder", device=dev, runtime=runtime),
            "kb": lambda _: KnowledgeBase.from_disk(path / "kb"),
            "index": lambda dev: DenseIndex.from_disk(path / "index", device=dev),
        }
        if (path / SPARSE_PART).exists():
            loaders[SPARSE_PART] = lambda _: SparseIndex.from_disk(path / SPARSE_PART)
        return cls._load(loaders, meta, exclude=exclude, keep=keep, device=device, source=path)

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """The parts of :meth:`to_disk` as one msgpack map (``meta``, ``encoder``,
        ``kb``, ``index``, ``sparse``), all but those named in ``exclude``."""
        serialize: Dict[str, Callable[[], Any]] = {
            META_PART: lambda: json_dumps(self.meta),
            "encoder": self.encoder.to_bytes,
            "kb": self.kb.to_bytes,
            "index": self.index.to_bytes,
        }
        if self.sparse is not None:
            serialize[SPARSE_PART] = self.sparse.to_bytes
        return to_bytes(serialize, exclude)

    @classmethod
    def from_bytes(
        cls, data: bytes, *, exclude: Iterable[str] = SimpleFrozenList(), keep: Optional["LinkerKB"] = None
    ) -> "LinkerKB":
        """Load what :meth:`to_bytes` wrote, on the device saved with it; ``exclude``
        and ``keep`` as for :meth:`from_disk`. Keys it does not know are ignored (a
        linker's bytes hold its ``cfg`` beside these parts)."""
        msg = _msgpack_map(data)
        missing = [part for part in PARTS if part not in exclude and part not in msg]
        if missing:
            raise IndexLoadError(Errors.E363.format(problem=f"{', '.join(missing)} missing"))
        meta: Dict[str, Any] = {}
        if META_PART not in exclude and META_PART in msg:
            meta = _check_meta(_parse_json(msg[META_PART], source="bytes"), source="bytes")
        loaders: Dict[str, Callable[[str], Any]] = {
            "encoder": lambda dev: SapEncoder.from_bytes(msg["encoder"], device=dev),
            "kb": lambda _: KnowledgeBase.from_bytes(msg["kb"]),
            "index": lambda dev: DenseIndex.from_bytes(msg["index"], device=dev),
        }
        if SPARSE_PART in msg:
            loaders[SPARSE_PART] = lambda _: SparseIndex.from_bytes(msg[SPARSE_PART])
        return cls._load(loaders, meta, exclude=exclude, keep=keep, device=None, source="bytes")

    @classmethod
    def _load(
        cls,
        loaders: Dict[str, Callable[[str], Any]],
        meta: Dict[str, Any],
        *,
        exclude: Iterable[str],
        keep: Optional["LinkerKB"],
        device: Optional[str],
        source: Any,
    ) -> "LinkerKB":
        """The bundle from ``loaders`` (part -> its loader, given the device; a
        sparse index only when one was saved), the parts named in ``exclude`` from
        ``keep``. The device: ``device``, else the saved one, else "auto"."""
        device = device or meta.get("device", "auto")
        encoder_device, index_device = part_devices(device)
        parts = _kept_parts(keep, exclude, source=source)
        for part, load in loaders.items():
            if part not in parts:
                parts[part] = load(encoder_device if part == "encoder" else index_device)
        parts.setdefault(SPARSE_PART, None)
        return cls(**parts, device=device)

    @property
    def meta(self) -> Dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kb": self.kb.meta,
            "index": self.index.meta,
            "encoder": self.encoder.cfg,
            "sparse": self.sparse.meta if self.sparse is not None else None,
            "device": self.device,
        }


#: the index's GPU devices (:data:`spacy_sapel.index.device.DEVICES`)
_INDEX_GPU_DEVICES = ("gpu", "faiss-gpu", "torch-gpu")


def part_devices(device: str) -> Tuple[str, str]:
    """The encoder's and the index's device for a KB's ``device``: the two name their
    devices differently (the encoder "cuda"/"cuda:N", the index "gpu", "faiss-gpu",
    "torch-gpu"), so one name of either kind places both; "auto" and "cpu" are
    common to both. E365 for anything else."""
    if device in ("auto", "cpu"):
        return device, device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device, "gpu"
    if device in _INDEX_GPU_DEVICES:
        return "cuda", device
    raise SapelError(Errors.E365.format(value=device))


def _kept_parts(
    keep: Optional[LinkerKB], exclude: Iterable[str], *, source: Any
) -> Dict[str, Any]:
    """The parts named in ``exclude``, taken from ``keep``: E360 when a needed one
    (encoder, kb, index) is excluded and there is no ``keep``; an excluded sparse
    index is ``keep``'s, or none."""
    excluded = [part for part in PARTS if part in exclude]
    if excluded and keep is None:
        raise SapelError(Errors.E360.format(source=source, parts=", ".join(excluded)))
    parts = {part: getattr(keep, part) for part in excluded}
    if SPARSE_PART in exclude:
        parts[SPARSE_PART] = keep.sparse if keep is not None else None
    return parts


def _msgpack_map(data: bytes) -> Dict[str, Any]:
    try:
        msg = srsly.msgpack_loads(data)
    except (TypeError, ValueError) as err:
        raise IndexLoadError(Errors.E363.format(problem=f"not valid msgpack ({err})")) from err
    if not isinstance(msg, dict):
        raise IndexLoadError(Errors.E363.format(problem=f"a msgpack {type(msg).__name__}, not a map"))
    return msg


def _read_meta(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text(encoding="utf8")
    except (OSError, UnicodeDecodeError) as err:
        raise IndexLoadError(Errors.E362.format(source=path, problem=f"it cannot be read ({err})")) from err
    return _check_meta(_parse_json(text, source=path), source=path)


def _parse_json(text: Any, *, source: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as err:
        raise IndexLoadError(Errors.E362.format(source=source, problem=f"it is not JSON ({err})")) from err


def _check_meta(meta: Any, *, source: Any) -> Dict[str, Any]:
    """The saved metadata, refused when it is no object or its ``device`` no string
    (a directory written before the device was saved has none: "auto")."""
    if not isinstance(meta, dict):
        raise IndexLoadError(Errors.E362.format(source=source, problem=f"it is a {type(meta).__name__}"))
    device = meta.get("device", "auto")
    if not isinstance(device, str):
        raise IndexLoadError(
            Errors.E362.format(source=source, problem=f"its device is {device!r}, not a string")
        )
    return meta
