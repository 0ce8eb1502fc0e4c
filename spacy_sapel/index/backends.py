"""Search backends behind :class:`~spacy_sapel.index.DenseIndex`: a faiss index (on the
CPU or moved to the GPUs) or exact inner-product search with torch.

Every backend takes float32 queries already checked by the caller and returns
``(scores float32 [m, k], rows int64 [m, k])`` for ``1 <= k <= ntotal``.
"""
from __future__ import annotations

from typing import Callable, Optional, Protocol, Tuple, Union

import faiss
import numpy as np
import torch

SearchResult = Tuple[np.ndarray, np.ndarray]

#: Upper bound on the elements of one [queries x rows] score matrix in torch search.
_SCORE_BLOCK = 1 << 25
#: Rows reconstructed from faiss per step when moving vectors into torch.
_RECONSTRUCT_ROWS = 1 << 16


class Searcher(Protocol):
    def search(self, queries: np.ndarray, k: int) -> SearchResult: ...


class FaissSearcher:
    """Search with a faiss index as it is (CPU, or a GPU index from :func:`to_gpus`)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    def search(
        self, queries: np.ndarray, k: int, params: Optional[faiss.SearchParameters] = None
    ) -> SearchResult:
        """``params`` (CPU indexes): faiss search parameters, e.g. with an ID selector."""
        scores, rows = self.index.search(queries, k, params=params)
        return scores, rows


def to_gpus(
    index: faiss.Index,
    *,
    nprobe: Optional[int] = None,
    shard: bool = True,
    float16: bool = False,
) -> faiss.Index:
    """Copy a CPU index to every visible GPU with faiss's multi-GPU cloner: sharded
    (each GPU holds a slice, so the KB may exceed one GPU's memory) or replicated
    (each GPU holds all of it; queries are split, for throughput). ``float16`` stores
    flat and IVF-flat vectors in half precision on the GPUs."""
    options = faiss.GpuMultipleClonerOptions()
    options.shard = shard
    options.useFloat16 = float16
    gpu_index = faiss.index_cpu_to_all_gpus(index, co=options)
    if nprobe is not None:
        faiss.GpuParameterSpace().set_index_parameter(gpu_index, "nprobe", nprobe)
    return gpu_index


class TorchSearcher:
    """Exact inner-product search with torch over vectors held on one device.

    Built from a faiss index, it searches the vectors that index stores: exactly the
    input rows for flat, ivf and hnsw, the PQ-decoded approximations for ivfpq, and
    for a PCA chain the reduced vectors (queries go through the same chain). IVF
    probing and HNSW graphs are bypassed: every row is scored.
    """

    def __init__(
        self,
        vectors: torch.Tensor,
        *,
        transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    ) -> None:
        self.vectors = vectors
        self.transform = transform

    @classmethod
    def from_faiss(
        cls,
        index: faiss.Index,
        *,
        device: Union[str, torch.device],
        half: bool = False,
    ) -> "TorchSearcher":
        """Reconstruct the stored vectors of ``index`` onto ``device``, in chunks so the
        host never holds a second full copy. ``half`` stores them as float16."""
        index = faiss.downcast_index(index)
        transform = None
        if isinstance(index, faiss.IndexPreTransform):
            transform = _chain_transform(index)
            index = faiss.downcast_index(index.index)
        dtype = torch.float16 if half else torch.float32
        vectors = torch.empty((index.ntotal, index.d), dtype=dtype, device=device)
        for start in range(0, index.ntotal, _RECONSTRUCT_ROWS):
            count = min(_RECONSTRUCT_ROWS, index.ntotal - start)
            chunk = index.reconstruct_n(start, count)
            vectors[start : start + count] = torch.from_numpy(chunk).to(device, dtype)
        return cls(vectors, transform=transform)

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        if self.transform is not None:
            queries = self.transform(queries)
        n_rows = self.vectors.shape[0]
        batch = max(1, _SCORE_BLOCK // max(n_rows, 1))
        all_scores, all_rows = [], []
        with torch.inference_mode():
            for start in range(0, len(queries), batch):
                q = torch.from_numpy(queries[start : start + batch]).to(
                    self.vectors.device, self.vectors.dtype
                )
                scores, rows = torch.topk((q @ self.vectors.T).float(), k, dim=1)
                all_scores.append(scores.cpu().numpy())
                all_rows.append(rows.cpu().numpy().astype(np.int64))
        return np.concatenate(all_scores), np.concatenate(all_rows)


def _chain_transform(index: faiss.IndexPreTransform) -> Callable[[np.ndarray], np.ndarray]:
    """The vector transforms of a pre-transform index as one numpy function."""

    def apply(x: np.ndarray) -> np.ndarray:
        # read the chain through ``index`` each time: the closure keeps it alive
        for i in range(index.chain.size()):
            x = index.chain.at(i).apply(x)
        return np.ascontiguousarray(x, dtype=np.float32)

    return apply
