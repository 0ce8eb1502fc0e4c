"""A faiss index over rows of L2-normalised float32 vectors, searched by inner product
(= cosine similarity). It knows nothing of KBs or encoders: a result is a row number,
and the caller maps rows to whatever it indexed.

Index types:

- ``flat``: exact search, the reference the others are measured against.
- ``ivf``: k-means inverted lists (``IndexIVFFlat``); ``nprobe`` lists are scanned.
- ``hnsw``: a graph index (``IndexHNSWFlat``), fast and memory-hungry.
- ``ivfpq``: inverted lists of product-quantised codes, for KBs too big for memory.
- ``auto``: ``flat`` up to :data:`AUTO_EXACT_MAX` vectors, ``ivf`` above (see
  :func:`resolve_index_type`); the resolved type is what the meta records.
- ``factory``: any faiss ``index_factory`` string, given as ``factory`` (e.g.
  ``"OPQ16_64,IVF1024,PQ16"``), built with the inner-product metric.

Every type is built from a faiss ``index_factory`` string (:func:`factory_string`),
recorded in the meta as ``factory``; indexes saved before that still load.

With ``pca_dim`` every type first reduces the vectors with a PCA and re-normalises
them, so scores stay cosine similarities (in the reduced space). ``storage`` keeps the
vectors of ``flat``, ``ivf`` and ``hnsw`` as float32, float16 (half the bytes, the same
ranking in practice) or 8-bit scalar-quantised codes (a quarter).
"""
from __future__ import annotations

import difflib
import inspect
import logging
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union, cast

import faiss
import numpy as np
import srsly

from ..errors import Errors, IndexLoadError, SapelError, Warnings
from ..util import DirMarker, PathLike, atomic_directory, check_int_option, read_json, write_json
from .backends import FaissSearcher, Searcher, TorchSearcher, to_gpus
from .device import check_device, choose_search_backend, torch_cuda_available

logger = logging.getLogger("spacy_sapel")

INDEX_TYPES = ("flat", "ivf", "hnsw", "ivfpq", "auto", "factory")
#: Vector storage of flat / ivf / hnsw indexes (ivfpq stores PQ codes).
STORAGES = ("fp32", "fp16", "sq8")
#: How faiss spreads an index over several GPUs.
GPU_SHARDING = ("shard", "replicate")
#: ``auto`` searches exactly (flat) up to this many vectors, with an IVF index above.
AUTO_EXACT_MAX = 100_000
#: The least ``nprobe`` an ``auto`` IVF index scans.
AUTO_MIN_NPROBE = 32
#: k-means training points per inverted list of an ``auto`` IVF index (faiss warns
#: below 39): enough for the centroids, and builds a 1M-vector index in a minute or two.
AUTO_POINTS_PER_LIST = 64
FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
META_FILE = "meta.json"
#: what ``to_disk`` may replace: an index directory it wrote
INDEX_MARKER = DirMarker("index directory", (META_FILE,), ("format_version", "dim", "fingerprint"))

_IVF_TYPES = ("ivf", "ivfpq")
#: faiss k-means warns below 39 training points per centroid.
_MIN_POINTS_PER_LIST = 39
#: faiss k-means uses at most 256 points per centroid; we draw that sample ourselves.
_POINTS_PER_CENTROID = 256
#: Training rows for the PCA (and for indexes without k-means).
_PCA_TRAIN_POINTS = 100_000
#: faiss >= 1.10 can map a file's flat codes, HNSW graph and IVF lists in place
#: (IO_FLAG_MMAP_IFC); with an older faiss, mmap=True reads normally.
_MMAP_FLAGS = (
    faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
    if hasattr(faiss, "IO_FLAG_MMAP_IFC")
    else 0
)
_BYTES_SOURCE = "<bytes>"


def resolve_index_type(index_type: str, count: int) -> str:
    """The index type built for ``count`` vectors: ``auto`` is ``flat`` (exact) up
    to ``AUTO_EXACT_MAX`` vectors, where exact search is still fast enough on a CPU
    (about a millisecond per query at 100k x 384), and ``ivf`` above, which scans
    ``nprobe >= 32`` of about 4 * sqrt(n) lists trained on 64 points per list
    (faiss's guideline is 4 to 16 * sqrt(n); on 1M clustered vectors, 2 * sqrt(n)
    lists gave recall@10 0.92 and 4 * sqrt(n) 0.99, see ``benchmarks/scale.py``)."""
    if index_type != "auto":
        return index_type
    return "flat" if count <= AUTO_EXACT_MAX else "ivf"


def auto_nlist(count: int) -> int:
    """The number of inverted lists used when ``nlist`` is not given: about
    4 * sqrt(n), but small enough that every list has >= 39 training points."""
    return max(1, min(round(4 * math.sqrt(count)), count // _MIN_POINTS_PER_LIST))


class DenseIndex:
    """Inner-product search over L2-normalised vectors, saved as ``index.faiss`` plus
    ``meta.json``. The faiss index is always kept on the CPU; a GPU copy (or a torch
    tensor) is made for searching when the device allows, chosen at the first search
    or when loading."""

    def __init__(
        self,
        *,
        index_type: str = "flat",
        pca_dim: Optional[int] = None,
        nlist: Optional[int] = None,
        nprobe: int = 16,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        pq_m: int = 16,
        pq_nbits: int = 8,
        storage: str = "fp32",
        gpu_sharding: str = "shard",
        device: str = "auto",
        seed: int = 0,
        factory: Optional[str] = None,
    ) -> None:
        """Check the options; no I/O and no faiss work happens here. ``device`` is
        one of "auto", "cpu", "gpu", "faiss-gpu", "torch-gpu" (see
        :func:`~spacy_sapel.index.device.choose_search_backend`); ``seed`` fixes the
        training sample and the k-means initialisation. ``gpu_sharding`` ("shard" or
        "replicate") says how faiss spreads the index over several GPUs. ``factory`` is
        the faiss ``index_factory`` string of ``index_type="factory"``."""
        if index_type not in INDEX_TYPES:
            raise SapelError(
                Errors.E101.format(value=index_type, options=", ".join(INDEX_TYPES))
            )
        _check_int("pca_dim", pca_dim, minimum=1, optional=True)
        _check_int("nlist", nlist, minimum=1, optional=True)
        _check_int("nprobe", nprobe, minimum=1)
        _check_int("hnsw_m", hnsw_m, minimum=2)
        _check_int("ef_construction", ef_construction, minimum=1)
        _check_int("ef_search", ef_search, minimum=1)
        _check_int("pq_m", pq_m, minimum=1)
        _check_int("pq_nbits", pq_nbits, minimum=1, maximum=16)
        _check_int("seed", seed, minimum=0)
        if index_type == "ivfpq" and pca_dim is not None and pca_dim % pq_m:
            raise SapelError(Errors.E107.format(pq_m=pq_m, dim=pca_dim))
        if storage not in STORAGES:
            raise SapelError(
                Errors.E118.format(value=storage, options=", ".join(STORAGES))
            )
        if index_type == "ivfpq" and storage != "fp32":
            raise SapelError(Errors.E119.format(value=storage))
        _check_factory(index_type, factory, pca_dim=pca_dim, storage=storage)
        if gpu_sharding not in GPU_SHARDING:
            raise SapelError(
                Errors.E120.format(value=gpu_sharding, options=", ".join(GPU_SHARDING))
            )
        self.device = check_device(device)
        # plain ints (not numpy ones), so that the meta serializes as JSON
        self._params: Dict[str, Any] = {
            "index_type": index_type,
            "pca_dim": None if pca_dim is None else int(pca_dim),
            "nlist": None if nlist is None else int(nlist),
            "nprobe": int(nprobe),
            "hnsw_m": int(hnsw_m),
            "ef_construction": int(ef_construction),
            "ef_search": int(ef_search),
            "pq_m": int(pq_m),
            "pq_nbits": int(pq_nbits),
            "storage": storage,
            "gpu_sharding": gpu_sharding,
            "seed": int(seed),
            "factory": factory,
        }
        self._index: Optional[faiss.Index] = None
        self._meta: Optional[Dict[str, Any]] = None
        self._searcher: Optional[Searcher] = None
        self._backend: Optional[str] = None

    @classmethod
    def from_options(
        cls, index_type: str = "flat", options: Optional[Mapping[str, Any]] = None
    ) -> "DenseIndex":
        """A DenseIndex from user-given options (``--index-option``, a config's
        ``index_options``): an unknown name is refused with the valid ones (and the
        closest) instead of a TypeError, before any vector is computed."""
        options = dict(options or {})
        for name in options:
            if name not in INDEX_OPTIONS:
                close = difflib.get_close_matches(name, INDEX_OPTIONS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SapelError(
                    Errors.E121.format(name=name, hint=hint, options=", ".join(INDEX_OPTIONS))
                )
        return cls(index_type=index_type, **options)

    @property
    def index_type(self) -> str:
        """The index type; once built, ``auto`` is resolved to the type built."""
        if self._meta is not None:
            return self._meta["index_type"]
        return self._params["index_type"]

    @property
    def dim(self) -> int:
        """Dimension of the vectors the index takes (before any PCA)."""
        return self._require_meta("reading its dimension")["dim"]

    @property
    def ntotal(self) -> int:
        """Number of indexed rows (0 before :meth:`build`)."""
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def meta(self) -> Dict[str, Any]:
        """What ``meta.json`` records: format_version, dim, metric, count, index_type,
        params (the options, with nlist resolved), pca_dim, fingerprint, faiss_version."""
        meta = self._require_meta("reading its meta")
        return {**meta, "params": dict(meta["params"])}

    @property
    def backend(self) -> Optional[str]:
        """The search backend in use ("faiss-gpu", "torch-gpu", "cpu"), None until
        chosen."""
        return self._backend

    @property
    def faiss_index(self) -> Optional[faiss.Index]:
        """The CPU faiss index (None before :meth:`build`); searches may run on a copy."""
        return self._index

    def build(self, vectors: np.ndarray, *, fingerprint: str) -> None:
        """Index the rows of ``vectors`` ([n, d], L2-normalised; row i is result i),
        replacing any previous content. ``fingerprint`` names the encoder that made
        the vectors; loading refuses an index made by another encoder."""
        if not isinstance(fingerprint, str) or not fingerprint:
            raise SapelError(Errors.E116.format(value=fingerprint))
        x = _as_vectors(vectors)
        count, dim = x.shape
        params, points_per_list = self._resolve(count, dim)
        factory = factory_string(params)
        index = _new_faiss_index(dim, params)
        try:
            if not index.is_trained:
                index.train(
                    _training_sample(
                        x,
                        nlist=_nlist(index),
                        seed=params["seed"],
                        points_per_list=points_per_list,
                    )
                )
            index.add(x)
        except RuntimeError as err:
            raise SapelError(Errors.E123.format(factory=factory, count=count, error=err)) from err
        _apply_search_params(index, params)
        self._index = index
        self._meta = {
            "format_version": FORMAT_VERSION,
            "dim": dim,
            "metric": "ip",
            "count": count,
            "index_type": params["index_type"],
            "requested_index_type": self._params["index_type"],
            "factory": factory,
            "params": params,
            "pca_dim": params["pca_dim"],
            "fingerprint": fingerprint,
            "faiss_version": faiss.__version__,
        }
        self._searcher = None
        self._backend = None

    def check_build(self, count: int, dim: int) -> None:
        """Refuse options that cannot build an index of ``count`` vectors of
        dimension ``dim`` (a PCA or IVF too big for the data, a factory string faiss
        does not accept), so that callers can check before computing the vectors."""
        params, _ = self._resolve(count, dim)
        _new_faiss_index(dim, params)

    def estimate_bytes(self, count: int, dim: int) -> int:
        """Roughly how many bytes the index of ``count`` vectors of dimension ``dim``
        takes on disk (at most float32 vectors plus ids and graph links)."""
        params, _ = self._resolve(count, dim)
        work_dim = params["pca_dim"] or dim
        index_type = params["index_type"]
        if index_type == "ivfpq":
            per_vector = params["pq_m"] * params["pq_nbits"] / 8 + 8
        elif index_type == "factory":
            per_vector = 4 * work_dim + 8
        else:
            per_vector = _STORAGE_BYTES[params["storage"]] * work_dim + 8
        if index_type == "hnsw":
            per_vector += 8 * params["hnsw_m"]
        return int(count * per_vector + 4 * dim * work_dim)

    def _resolve(self, count: int, dim: int) -> Tuple[Dict[str, Any], int]:
        """The build parameters for ``count`` vectors of dimension ``dim`` (``auto``
        and ``nlist`` resolved) and the k-means training points per list."""
        params = dict(self._params)
        requested = params["index_type"]
        index_type = params["index_type"] = resolve_index_type(requested, count)
        points_per_list = _POINTS_PER_CENTROID
        if requested == "auto" and index_type == "ivf":
            params["nprobe"] = max(params["nprobe"], AUTO_MIN_NPROBE)
            params["nlist"] = params["nlist"] or auto_nlist(count)
            points_per_list = AUTO_POINTS_PER_LIST
        pca_dim = params["pca_dim"]
        if pca_dim is not None:
            if pca_dim >= dim:
                raise SapelError(Errors.E106.format(pca_dim=pca_dim, dim=dim))
            if count < pca_dim:
                raise SapelError(Errors.E117.format(pca_dim=pca_dim, count=count))
        if index_type in _IVF_TYPES:
            params["nlist"] = params["nlist"] or auto_nlist(count)
            if params["nlist"] > count:
                raise SapelError(Errors.E109.format(nlist=params["nlist"], count=count))
        if index_type == "ivfpq":
            if (pca_dim or dim) % params["pq_m"]:
                raise SapelError(Errors.E107.format(pq_m=params["pq_m"], dim=pca_dim or dim))
            needed = 2 ** params["pq_nbits"]
            if count < needed:
                raise SapelError(
                    Errors.E108.format(pq_nbits=params["pq_nbits"], needed=needed, count=count)
                )
        if index_type == "factory":
            nlist = _nlist(_new_faiss_index(dim, params))
            if nlist is not None and nlist > count:
                raise SapelError(Errors.E109.format(nlist=nlist, count=count))
        return params, points_per_list

    @property
    def supports_selection(self) -> bool:
        """Whether :meth:`search` can restrict the results to ``allowed`` rows in the
        search itself (a faiss ID selector): faiss on the CPU, for the index kinds
        that take one; not the GPU or torch backends."""
        searcher = self._get_searcher()
        return (
            self._backend == "cpu"
            and isinstance(searcher, FaissSearcher)
            and _selection_params(self._require_index("searching"), None, self.meta["params"]) is not None
        )

    def search(
        self, queries: np.ndarray, k: int, *, allowed: Optional[np.ndarray] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows for each query: ``(scores float32 [m, k], rows int64
        [m, k])``, best first. Where fewer than ``k`` rows are found (``k`` > ntotal,
        or IVF lists that hold too few) rows are -1 and scores -inf. ``allowed``, a
        boolean mask over the rows, keeps the search to those rows (needs
        :attr:`supports_selection`), so the best ``k`` allowed rows come in one pass."""
        index = self._require_index("searching")
        k = check_int_option("k", k)
        q = _as_queries(queries, self.dim)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        rows = np.full((q.shape[0], k), -1, dtype=np.int64)
        if q.shape[0] == 0:
            return scores, rows
        found = min(k, int(index.ntotal))
        if allowed is None:
            found_scores, found_rows = self._get_searcher().search(q, found)
        else:
            found_scores, found_rows = self._search_allowed(q, found, allowed)
        scores[:, :found] = found_scores
        rows[:, :found] = found_rows
        scores[rows < 0] = -np.inf
        return scores, rows

    def _search_allowed(
        self, queries: np.ndarray, k: int, allowed: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        mask = np.asarray(allowed)
        if mask.dtype != bool or mask.shape != (self.ntotal,):
            raise SapelError(
                Errors.E102.format(
                    name="allowed", value=f"array {mask.dtype} {mask.shape}",
                    expected=f"a boolean mask over the {self.ntotal} rows",
                )
            )
        if not self.supports_selection:
            raise SapelError(Errors.E126.format(backend=self._backend, index_type=self.index_type))
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(bitmap)
        params = _selection_params(self._require_index("searching"), selector, self.meta["params"])
        # ``selector`` points into ``bitmap``, which lives until this returns
        return cast(FaissSearcher, self._get_searcher()).search(queries, k, params=params)

    def to_disk(self, path: PathLike) -> None:
        """Write the directory ``path`` (``index.faiss`` and ``meta.json``) atomically:
        an interrupted write leaves the previous content in place."""
        index = self._require_index("saving it")
        with atomic_directory(path, INDEX_MARKER) as tmp:
            faiss.write_index(index, str(tmp / INDEX_FILE))
            write_json(tmp / META_FILE, self._meta)

    @classmethod
    def from_disk(
        cls,
        path: PathLike,
        *,
        expected_dim: Optional[int] = None,
        expected_fingerprint: Optional[str] = None,
        mmap: bool = True,
        device: str = "auto",
    ) -> "DenseIndex":
        """Load a directory written by :meth:`to_disk`, refusing (IndexLoadError) one
        that is incomplete, corrupt, or made for another dimension or encoder. With
        ``mmap`` the faiss file is memory-mapped instead of read into memory."""
        path = Path(path)
        if not path.is_dir():
            raise IndexLoadError(Errors.E113.format(path=path, problem="no such directory"))
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise IndexLoadError(
                Errors.E113.format(path=path, problem=f"{META_FILE} is missing")
            )
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError) as err:
            raise IndexLoadError(
                Errors.E113.format(path=meta_path, problem=f"it is not readable JSON ({err})")
            ) from err
        self = cls._from_meta(meta, source=meta_path, device=device)
        _check_expected(meta, source=path, dim=expected_dim, fingerprint=expected_fingerprint)
        index_path = path / INDEX_FILE
        if not index_path.is_file():
            raise IndexLoadError(
                Errors.E113.format(path=path, problem=f"{INDEX_FILE} is missing")
            )
        self._attach(_read_index_file(index_path, mmap=mmap), meta, source=index_path)
        return self

    def to_bytes(self) -> bytes:
        """The index and its meta as one msgpack blob."""
        index = self._require_index("serializing it")
        blob = faiss.serialize_index(index).tobytes()
        return srsly.msgpack_dumps({"meta": self._meta, "index": blob})

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        expected_dim: Optional[int] = None,
        expected_fingerprint: Optional[str] = None,
        device: str = "auto",
    ) -> "DenseIndex":
        """Load what :meth:`to_bytes` wrote, with the checks of :meth:`from_disk`."""
        try:
            msg = srsly.msgpack_loads(data)
        except (TypeError, ValueError) as err:
            raise IndexLoadError(
                Errors.E113.format(path=_BYTES_SOURCE, problem=f"not valid msgpack ({err})")
            ) from err
        if not (
            isinstance(msg, dict)
            and isinstance(msg.get("meta"), dict)
            and isinstance(msg.get("index"), bytes)
        ):
            raise IndexLoadError(
                Errors.E113.format(
                    path=_BYTES_SOURCE, problem="expected a map with 'meta' and 'index'"
                )
            )
        meta = msg["meta"]
        self = cls._from_meta(meta, source=_BYTES_SOURCE, device=device)
        _check_expected(
            meta, source=_BYTES_SOURCE, dim=expected_dim, fingerprint=expected_fingerprint
        )
        try:
            index = faiss.deserialize_index(np.frombuffer(msg["index"], dtype=np.uint8))
        except (RuntimeError, MemoryError) as err:
            raise IndexLoadError(
                Errors.E113.format(path=_BYTES_SOURCE, problem=_faiss_problem(err))
            ) from err
        self._attach(index, meta, source=_BYTES_SOURCE)
        return self

    @classmethod
    def _from_meta(
        cls, meta: Any, *, source: Union[Path, str], device: str
    ) -> "DenseIndex":
        """An unbuilt DenseIndex with the options recorded in ``meta``."""
        problem = _meta_problem(meta)
        if problem is None:
            try:
                return cls(**meta["params"], device=device)
            except (TypeError, ValueError) as err:
                problem = f"its params are invalid ({err})"
        raise IndexLoadError(Errors.E113.format(path=source, problem=problem))

    def _attach(
        self, index: faiss.Index, meta: Dict[str, Any], *, source: Union[Path, str]
    ) -> None:
        """Adopt a loaded faiss index after checking it against its meta, and choose
        the search backend now, so a device problem shows up at load time."""
        if index.ntotal != meta["count"] or index.d != meta["dim"]:
            problem = (
                f"the meta records {meta['count']} vectors of dimension {meta['dim']} "
                f"but the faiss index holds {index.ntotal} of dimension {index.d}"
            )
            raise IndexLoadError(Errors.E113.format(path=source, problem=problem))
        _apply_search_params(index, meta["params"])
        self._index = index
        self._meta = meta
        self._get_searcher()

    def _get_searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = self._make_searcher(choose_search_backend(self.device))
        return self._searcher

    def _make_searcher(self, backend: str) -> Searcher:
        """The searcher for ``backend``, stepping down when faiss cannot put this index
        on the GPU (faiss has no GPU HNSW; some IVF-PQ shapes are CPU-only)."""
        index = self._require_index("searching")
        params = self._require_meta("searching")["params"]
        storage = params.get("storage", "fp32")
        reason = _gpu_unsupported(index)
        if backend == "faiss-gpu" and reason is not None:
            backend = self._gpu_fallback(reason)
            logger.info("Index search backend: %s (%s)", backend, reason)
        if backend == "faiss-gpu":
            try:
                searcher: Searcher = FaissSearcher(
                    to_gpus(
                        index,
                        nprobe=_search_nprobe(index, params),
                        shard=params.get("gpu_sharding", "shard") == "shard",
                        float16=storage == "fp16",
                    )
                )
            except RuntimeError as err:
                backend = self._gpu_fallback(f"faiss could not copy the index: {err}")
                logger.warning(
                    Warnings.W102.format(index_type=self.index_type, error=err, backend=backend)
                )
            else:
                self._backend = backend
                return searcher
        if backend == "torch-gpu":
            # quantised storage was chosen to save memory: keep it in half precision
            searcher = TorchSearcher.from_faiss(index, device="cuda", half=storage != "fp32")
        else:
            searcher = FaissSearcher(index)
        self._backend = backend
        return searcher

    def _gpu_fallback(self, reason: str) -> str:
        """Backend to use when faiss-gpu was chosen but cannot serve this index."""
        if self.device == "faiss-gpu":
            raise SapelError(Errors.E112.format(device=self.device, reason=reason))
        if torch_cuda_available():
            return "torch-gpu"
        if self.device == "gpu":
            reason = f"{reason}, and torch sees no CUDA GPU"
            raise SapelError(Errors.E112.format(device=self.device, reason=reason))
        return "cpu"

    def _require_index(self, action: str) -> faiss.Index:
        if self._index is None:
            raise SapelError(Errors.E110.format(action=action))
        return self._index

    def _require_meta(self, action: str) -> Dict[str, Any]:
        if self._meta is None:
            raise SapelError(Errors.E110.format(action=action))
        return self._meta


#: The options :meth:`DenseIndex.from_options` takes (the constructor's keywords).
INDEX_OPTIONS = tuple(
    name for name in inspect.signature(DenseIndex.__init__).parameters
    if name not in ("self", "index_type")
)


def _gpu_unsupported(index: faiss.Index) -> Optional[str]:
    """Why faiss cannot copy this kind of index to a GPU, or None if it may (a copy
    that still fails falls back too)."""
    base = _base_index(index)
    if isinstance(base, faiss.IndexHNSW):
        return "faiss has no GPU version of the hnsw index"
    if isinstance(base, faiss.IndexScalarQuantizer):
        return "faiss has no GPU version of the flat scalar-quantizer index"
    return None


def _check_int(
    name: str,
    value: Any,
    *,
    minimum: int,
    maximum: Optional[int] = None,
    optional: bool = False,
) -> None:
    if value is None and optional:
        return
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        expected = f"an integer {bounds}" + (" or None" if optional else "")
        raise SapelError(Errors.E102.format(name=name, value=value, expected=expected))


def _as_vectors(vectors: Any) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 [n, d] array, or a ValueError that says
    what is wrong with it."""
    array = np.asarray(vectors)
    problem = None
    if array.dtype.kind not in "fiu":
        problem = "the values are not numbers"
    elif array.ndim != 2:
        problem = f"expected 2 dimensions, got {array.ndim}"
    elif array.shape[0] == 0 or array.shape[1] == 0:
        problem = "there are no vectors to index"
    elif not np.isfinite(array).all():
        problem = "some values are NaN or infinite"
    if problem is not None:
        raise SapelError(
            Errors.E104.format(shape=array.shape, dtype=array.dtype, problem=problem)
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _as_queries(queries: Any, dim: int) -> np.ndarray:
    """``queries`` as a C-contiguous float32 [m, dim] array (m may be 0)."""
    array = np.asarray(queries)
    problem = None
    if array.dtype.kind not in "fiu":
        problem = "the values are not numbers"
    elif array.ndim != 2:
        problem = f"expected 2 dimensions, got {array.ndim}"
    elif array.shape[1] != dim:
        problem = f"the index holds vectors of dimension {dim}"
    elif not np.isfinite(array).all():
        problem = "some values are NaN or infinite"
    if problem is not None:
        raise SapelError(
            Errors.E105.format(shape=array.shape, dtype=array.dtype, problem=problem, dim=dim)
        )
    return np.ascontiguousarray(array, dtype=np.float32)


#: faiss index_factory codes of the ``storage`` values, and their bytes per dimension.
_STORAGE_CODES = {"fp32": "Flat", "fp16": "SQfp16", "sq8": "SQ8"}
_STORAGE_BYTES = {"fp32": 4, "fp16": 2, "sq8": 1}


def factory_string(params: Dict[str, Any]) -> str:
    """The faiss ``index_factory`` string of resolved build ``params`` (``nlist``
    set): e.g. ``"PCA256,L2norm,IVF4000,SQ8"``. A PCA is followed by a
    re-normalisation, so that inner products stay cosine similarities."""
    index_type = params["index_type"]
    if index_type == "factory":
        return params["factory"]
    parts = []
    if params["pca_dim"] is not None:
        parts += [f"PCA{params['pca_dim']}", "L2norm"]
    storage = _STORAGE_CODES[params.get("storage", "fp32")]
    if index_type == "flat":
        parts.append(storage)
    elif index_type == "hnsw":
        parts += [f"HNSW{params['hnsw_m']}", storage]
    elif index_type == "ivf":
        parts += [f"IVF{params['nlist']}", storage]
    else:
        parts += [f"IVF{params['nlist']}", f"PQ{params['pq_m']}x{params['pq_nbits']}"]
    return ",".join(parts)


def _new_faiss_index(dim: int, params: Dict[str, Any]) -> faiss.Index:
    """An empty, untrained faiss index for ``params`` (with ``nlist`` resolved), made
    by faiss's ``index_factory``, with the seeds and build-time knobs set."""
    factory = factory_string(params)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        message = " ".join(str(err).split())[:300]
        raise SapelError(Errors.E122.format(factory=factory, dim=dim, error=message)) from err
    base = _base_index(index)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.cp.seed = params["seed"]
    for part in (base, None if ivf is None else faiss.downcast_index(ivf)):
        if hasattr(part, "pq"):
            part.pq.cp.seed = params["seed"]
    if isinstance(base, faiss.IndexHNSW):
        base.hnsw.efConstruction = params["ef_construction"]
    return index


def _base_index(index: faiss.Index) -> faiss.Index:
    """The index under any pre-transforms (PCA, OPQ, normalisation), downcast."""
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return index


def _nlist(index: faiss.Index) -> Optional[int]:
    """The number of inverted lists of an IVF index (None for other kinds)."""
    ivf = faiss.try_extract_index_ivf(index)
    return None if ivf is None else int(ivf.nlist)


def _check_factory(
    index_type: str, factory: Optional[str], *, pca_dim: Optional[int], storage: str
) -> None:
    """``factory`` goes with ``index_type="factory"`` and carries the whole layout."""
    if index_type == "factory":
        if not isinstance(factory, str) or not factory.strip():
            raise SapelError(
                Errors.E102.format(
                    name="factory", value=factory,
                    expected="a faiss index_factory string such as 'IVF1024,SQ8' "
                    "with index_type='factory'",
                )
            )
        if pca_dim is not None or storage != "fp32":
            raise SapelError(Errors.E124.format(factory=factory))
    elif factory is not None:
        raise SapelError(Errors.E125.format(factory=factory, index_type=index_type))


def _training_sample(
    x: np.ndarray,
    *,
    nlist: Optional[int],
    seed: int,
    points_per_list: int = _POINTS_PER_CENTROID,
) -> np.ndarray:
    """A seeded random subset of ``x`` big enough for the PCA and for k-means (faiss
    would subsample to 256 points per list itself, with its own generator)."""
    limit = max(_PCA_TRAIN_POINTS, points_per_list * (nlist or 0))
    if len(x) > limit:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), limit, replace=False))]
    # the training (k-means, PCA) may take minutes: say so before it starts
    logger.info("Training the index on %d vectors (%s inverted lists)", len(x), nlist or "no")
    return x


def _search_nprobe(index: faiss.Index, params: Dict[str, Any]) -> Optional[int]:
    """nprobe for an IVF index (at most nlist: more probes than lists is exhaustive)."""
    ivf = faiss.try_extract_index_ivf(index)
    return None if ivf is None else min(params["nprobe"], int(ivf.nlist))


def _selection_params(
    index: faiss.Index, selector: Optional[faiss.IDSelector], params: Dict[str, Any]
) -> Optional[faiss.SearchParameters]:
    """faiss search parameters that restrict a search of ``index`` to ``selector``
    (with the index's own nprobe / efSearch), or None for an index kind that takes
    no selector."""
    base = _base_index(index)
    if isinstance(base, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=_search_nprobe(index, params))
    if isinstance(base, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=params["ef_search"])
    if isinstance(base, (faiss.IndexFlat, faiss.IndexScalarQuantizer, faiss.IndexPQ)):
        return faiss.SearchParameters(sel=selector)
    return None


def _apply_search_params(index: faiss.Index, params: Dict[str, Any]) -> None:
    """Set the search-time knobs (IVF nprobe, HNSW efSearch) on ``index``."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = _search_nprobe(index, params)
    base = _base_index(index)
    if isinstance(base, faiss.IndexHNSW):
        base.hnsw.efSearch = params["ef_search"]


def _meta_problem(meta: Any) -> Optional[str]:
    """What is wrong with a loaded meta record, or None."""
    if not isinstance(meta, dict):
        return "the meta is not a JSON object"
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        return (
            f"unsupported format_version {version!r} (this spacy_sapel reads version "
            f"{FORMAT_VERSION}); rebuild the index"
        )
    fields = {"dim": int, "count": int, "params": dict, "fingerprint": str, "metric": str}
    for key, kind in fields.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            return f"the meta field {key!r} is missing or not a {kind.__name__}"
    if meta["metric"] != "ip":
        return f"unsupported metric {meta['metric']!r} (expected 'ip')"
    return None


def _check_expected(
    meta: Dict[str, Any],
    *,
    source: Union[Path, str],
    dim: Optional[int],
    fingerprint: Optional[str],
) -> None:
    """Refuse an index built for another encoder."""
    if fingerprint is not None and meta["fingerprint"] != fingerprint:
        raise IndexLoadError(
            Errors.E114.format(path=source, found=meta["fingerprint"], expected=fingerprint)
        )
    if dim is not None and meta["dim"] != dim:
        raise IndexLoadError(Errors.E115.format(path=source, found=meta["dim"], expected=dim))


def _read_index_file(path: Path, *, mmap: bool) -> faiss.Index:
    """Read (or memory-map) a faiss file; faiss's own errors become IndexLoadError."""
    if mmap and _MMAP_FLAGS:
        try:
            return faiss.read_index(str(path), _MMAP_FLAGS)
        except RuntimeError as err:
            # an index type faiss cannot map (or a corrupt file): read it normally
            logger.debug("Memory-mapping %s failed (%s); reading it instead", path, err)
    try:
        return faiss.read_index(str(path))
    except (RuntimeError, MemoryError) as err:
        raise IndexLoadError(Errors.E113.format(path=path, problem=_faiss_problem(err))) from err


def _faiss_problem(err: BaseException) -> str:
    message = " ".join(str(err).split())
    return f"faiss cannot read it, the data is truncated or corrupt ({message[:300]})"
