"""A sparse retriever over character n-grams (TF-IDF, cosine), the lexical half of
BioSyn-style hybrid linking: it catches spelling variants and rare tokens that a dense
encoder blurs."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import srsly
from scipy import sparse

from ..errors import Errors, IndexLoadError, SapelError
from ..util import DirMarker, PathLike, atomic_directory, check_int_option

FORMAT_VERSION = 1
MATRIX_FILE = "names.npz"
META_FILE = "sparse_meta.msgpack"
SPARSE_MARKER = DirMarker("sparse index directory", (META_FILE,))
QUERY_BATCH = 256


def char_ngrams(text: str, ngram_range: Tuple[int, int]) -> List[str]:
    """Character n-grams of each word padded with spaces (``char_wb`` style), on the
    lower-cased, whitespace-collapsed text."""
    lo, hi = ngram_range
    grams: List[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(lo, hi + 1):
            grams.extend(padded[i : i + n] for i in range(max(len(padded) - n + 1, 1)))
    return grams


class SparseIndex:
    """TF-IDF vectors of character n-grams for a list of names; ``search`` returns the
    rows of the most similar names with cosine scores in [0, 1]."""

    def __init__(self, *, ngram_range: Tuple[int, int] = (2, 3)) -> None:
        lo, hi = ngram_range
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise SapelError(Errors.E127.format(value=ngram_range))
        self.ngram_range = (lo, hi)
        self.vocab: Dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float32)
        self.matrix: sparse.csr_matrix = sparse.csr_matrix((0, 0), dtype=np.float32)
        self._names_t: Optional[sparse.csr_matrix] = None

    @property
    def ntotal(self) -> int:
        return self.matrix.shape[0]

    def build(self, names: Sequence[str]) -> None:
        vocab: Dict[str, int] = {}
        tf = self._counts(names, vocab, grow=True)
        df = np.bincount(tf.indices, minlength=len(vocab)).astype(np.float32)
        n = len(names)
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        self.vocab = vocab
        self.matrix = self._weigh(tf)
        self._names_t = None

    def _counts(self, texts: Iterable[str], vocab: Dict[str, int], *, grow: bool) -> sparse.csr_matrix:
        """n-gram counts per text; unknown n-grams join ``vocab`` when ``grow``, else
        they are ignored."""
        indptr, indices, counts = [0], [], []
        for text in texts:
            row: Dict[int, int] = {}
            for gram in char_ngrams(text, self.ngram_range):
                col = vocab.setdefault(gram, len(vocab)) if grow else vocab.get(gram)
                if col is not None:
                    row[col] = row.get(col, 0) + 1
            indices.extend(row.keys())
            counts.extend(row.values())
            indptr.append(len(indices))
        return sparse.csr_matrix(
            (np.asarray(counts, dtype=np.float32), np.asarray(indices, dtype=np.int32), indptr),
            shape=(len(indptr) - 1, len(vocab)),
        )

    def _weigh(self, tf: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sublinear tf times idf, rows L2-normalised (all-zero rows stay zero)."""
        weighted = tf.copy()
        weighted.data = (1.0 + np.log(weighted.data)) * self.idf[weighted.indices]
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ weighted, dtype=np.float32)

    def vectorize(self, texts: Iterable[str]) -> sparse.csr_matrix:
        return self._weigh(self._counts(texts, self.vocab, grow=False))

    def search(self, queries: Sequence[str], k: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(scores [m, k] float32, rows [m, k] int64)``; rows -1 and scores -inf where
        fewer than ``k`` names share an n-gram with the query."""
        k = check_int_option("k", k)
        m = len(queries)
        scores = np.full((m, k), -np.inf, dtype=np.float32)
        rows = np.full((m, k), -1, dtype=np.int64)
        if self._names_t is None:
            self._names_t = self.matrix.T.tocsr()
        names_t = self._names_t
        for start in range(0, m, QUERY_BATCH):
            product = (self.vectorize(queries[start : start + QUERY_BATCH]) @ names_t).tocsr()
            for i in range(product.shape[0]):
                lo, hi = product.indptr[i], product.indptr[i + 1]
                data, cols = product.data[lo:hi], product.indices[lo:hi]
                if len(data) > k:
                    top = np.argpartition(-data, k - 1)[:k]
                    data, cols = data[top], cols[top]
                # best first; ties by row so results are deterministic
                order = np.lexsort((cols, -data))
                scores[start + i, : len(order)] = data[order]
                rows[start + i, : len(order)] = cols[order]
        return scores, rows

    @property
    def meta(self) -> Dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "ngram_range": list(self.ngram_range),
            "count": self.ntotal,
            "n_features": len(self.vocab),
        }

    def to_disk(self, path: PathLike) -> None:
        with atomic_directory(path, SPARSE_MARKER) as tmp:
            sparse.save_npz(tmp / MATRIX_FILE, self.matrix)
            srsly.write_msgpack(tmp / META_FILE, self._state())

    @classmethod
    def from_disk(cls, path: PathLike) -> "SparseIndex":
        path = Path(path)
        try:
            state = srsly.read_msgpack(path / META_FILE)
            matrix = sparse.load_npz(path / MATRIX_FILE)
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise IndexLoadError(
                Errors.E128.format(path=path, problem=f"the sparse index is unreadable ({err})")
            ) from err
        return cls._from_state(state, matrix, source=path)

    def to_bytes(self) -> bytes:
        m = self.matrix
        return srsly.msgpack_dumps(
            {**self._state(), "data": m.data.tobytes(), "indices": m.indices.tobytes(),
             "indptr": m.indptr.astype(np.int64).tobytes(), "shape": list(m.shape)}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "SparseIndex":
        try:
            msg = srsly.msgpack_loads(data)
            matrix = sparse.csr_matrix(
                (np.frombuffer(msg["data"], dtype=np.float32),
                 np.frombuffer(msg["indices"], dtype=np.int32),
                 np.frombuffer(msg["indptr"], dtype=np.int64)),
                shape=tuple(msg["shape"]),
            )
        except (TypeError, ValueError, KeyError) as err:
            raise IndexLoadError(
                Errors.E128.format(path="<bytes>", problem=f"the sparse index is unreadable ({err})")
            ) from err
        return cls._from_state(msg, matrix, source="<bytes>")

    def _state(self) -> Dict[str, Any]:
        return {**self.meta, "vocab": list(self.vocab), "idf": self.idf.tobytes()}

    @classmethod
    def _from_state(cls, state: Dict[str, Any], matrix: Any, *, source: Any) -> "SparseIndex":
        if state.get("format_version", math.inf) > FORMAT_VERSION:
            raise IndexLoadError(
                Errors.E128.format(path=source, problem=f"format version {state.get('format_version')} is newer than supported ({FORMAT_VERSION})")
            )
        self = cls(ngram_range=tuple(state["ngram_range"]))
        self.vocab = {gram: i for i, gram in enumerate(state["vocab"])}
        self.idf = np.frombuffer(state["idf"], dtype=np.float32).copy()
        self.matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        if self.matrix.shape != (state["count"], len(self.vocab)):
            raise IndexLoadError(
                Errors.E128.format(path=source, problem=f"matrix shape {self.matrix.shape} does not match the metadata")
            )
        return self
