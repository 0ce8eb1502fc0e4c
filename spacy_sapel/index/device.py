"""Where index searches run: faiss on the GPU(s), exact torch search on a CUDA GPU, or
faiss on the CPU.

The probes are module-level functions so that tests (and users debugging a machine)
can replace them. A GPU is only used when it demonstrably works: some PyPI faiss GPU
wheels import fine, report GPUs, and then have no kernels for a newer GPU.
"""
from __future__ import annotations

import functools
import logging

import faiss
import numpy as np
import torch

from .._compat import FAISS_HAS_GPU_MODULE
from ..errors import Errors, SapelError, Warnings

logger = logging.getLogger("spacy_sapel")

#: Accepted ``device`` values. "gpu" means faiss on the GPU if it works, else torch.
DEVICES = ("auto", "cpu", "gpu", "faiss-gpu", "torch-gpu")
#: What :func:`choose_search_backend` returns.
BACKENDS = ("faiss-gpu", "torch-gpu", "cpu")


def faiss_gpu_count() -> int:
    """Number of GPUs faiss can see; 0 with a CPU-only faiss build."""
    if not FAISS_HAS_GPU_MODULE:
        return 0
    return int(faiss.get_num_gpus())


@functools.cache
def faiss_gpu_smoke_test() -> bool:
    """Search a tiny flat index on GPU 0 and compare with the CPU result. Any failure
    (missing kernels, driver mismatch, wrong results) means False. Cached: the answer
    does not change within a process."""
    if faiss_gpu_count() == 0:
        return False
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((64, 16)).astype(np.float32)
    faiss.normalize_L2(vectors)
    cpu_index = faiss.IndexFlatIP(16)
    cpu_index.add(vectors)
    expected_scores, expected_rows = cpu_index.search(vectors[:8], 4)
    try:
        gpu_index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu_index)
        scores, rows = gpu_index.search(vectors[:8], 4)
    except Exception as err:  # any failure inside the GPU build means "unusable"
        logger.debug("faiss GPU smoke test raised %s: %s", type(err).__name__, err)
        return False
    return bool(
        np.array_equal(rows, expected_rows)
        and np.allclose(scores, expected_scores, atol=1e-4)
    )


def torch_cuda_available() -> bool:
    """Whether torch can run on a CUDA GPU."""
    return bool(torch.cuda.is_available())


def check_device(device: str) -> str:
    """Validate a ``device`` option without probing any hardware."""
    if device not in DEVICES:
        raise SapelError(Errors.E103.format(value=device, options=", ".join(DEVICES)))
    return device


def choose_search_backend(preference: str = "auto") -> str:
    """Turn a device preference into a backend: "faiss-gpu", "torch-gpu" or "cpu".

    "auto" takes the best that works and falls back to "cpu". An explicit GPU request
    ("gpu", "faiss-gpu", "torch-gpu") that cannot be met raises a ValueError instead
    of silently running on the CPU: whoever asked for a GPU wants to know.
    """
    check_device(preference)
    if preference == "cpu":
        return _chosen("cpu", "requested")
    if preference == "torch-gpu":
        if not torch_cuda_available():
            raise SapelError(
                Errors.E112.format(device=preference, reason="torch sees no CUDA GPU")
            )
        return _chosen("torch-gpu", "requested")
    n_gpus = faiss_gpu_count()
    faiss_ok = n_gpus > 0 and faiss_gpu_smoke_test()
    if n_gpus > 0 and not faiss_ok:
        logger.warning(Warnings.W101.format(count=n_gpus))
    if faiss_ok:
        return _chosen("faiss-gpu", f"faiss sees {n_gpus} working GPU(s)")
    if n_gpus > 0:
        faiss_reason = "the faiss GPU test search failed"
    elif FAISS_HAS_GPU_MODULE:
        faiss_reason = "faiss sees no GPU"
    else:
        faiss_reason = "the installed faiss has no GPU support"
    if preference == "faiss-gpu":
        raise SapelError(Errors.E112.format(device=preference, reason=faiss_reason))
    if torch_cuda_available():
        return _chosen("torch-gpu", f"{faiss_reason}; torch sees a CUDA GPU")
    if preference == "gpu":
        raise SapelError(
            Errors.E112.format(
                device=preference, reason=f"{faiss_reason} and torch sees no CUDA GPU"
            )
        )
    return _chosen("cpu", f"{faiss_reason} and torch sees no CUDA GPU")


def _chosen(backend: str, reason: str) -> str:
    logger.info("Index search backend: %s (%s)", backend, reason)
    return backend
