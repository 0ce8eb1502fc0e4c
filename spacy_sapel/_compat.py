"""Optional dependencies, imported once. Code branches on these flags."""
from __future__ import annotations

import importlib.util
from typing import Any

from .errors import Errors, MissingDependencyError

try:
    import faiss
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        "spacy_sapel needs faiss. Install exactly one build: "
        "pip install 'spacy-sapel[cpu]' (faiss-cpu) or 'spacy-sapel[gpu]' (faiss-gpu-cu12)."
    ) from err

#: The installed faiss build has GPU support (faiss-gpu wheels). Whether a GPU is
#: actually usable is decided at run time by :mod:`spacy_sapel.index.device`.
FAISS_HAS_GPU_MODULE: bool = hasattr(faiss, "StandardGpuResources") and hasattr(
    faiss, "get_num_gpus"
)

#: spacy-transformers is importable (optional extra ``spacy-sapel[trf]``, the
#: transformer NER of ``configs/ner_trf.cfg``).
HAS_SPACY_TRANSFORMERS: bool = importlib.util.find_spec("spacy_transformers") is not None
#: transformers is importable: needed only for encoders other than BERT (RoBERTa,
#: XLM-RoBERTa, DistilBERT, ...), which load through its ``AutoModel``.
HAS_TRANSFORMERS: bool = importlib.util.find_spec("transformers") is not None

#: Ray is importable (optional extra ``spacy-sapel[ray]``).
HAS_RAY: bool = importlib.util.find_spec("ray") is not None

#: ONNX Runtime is importable (optional extra ``spacy-sapel[onnx]``, for the encoder's
#: ``onnx`` and ``onnx-int8`` runtimes).
HAS_ONNXRUNTIME: bool = importlib.util.find_spec("onnxruntime") is not None


def import_ray() -> Any:
    """The ``ray`` module; an ImportError that says how to install it when absent."""
    if not HAS_RAY:
        raise MissingDependencyError(Errors.E701)
    import ray

    return ray


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module; an ImportError that says how to install it when absent."""
    if not HAS_ONNXRUNTIME:
        raise MissingDependencyError(Errors.E710)
    import onnxruntime

    return onnxruntime


def import_transformers(path: Any) -> Any:
    """The ``transformers`` module, to load the non-BERT encoder at ``path``; an
    ImportError that says how to install it when absent."""
    if not HAS_TRANSFORMERS:
        raise MissingDependencyError(Errors.E224.format(path=path))
    import transformers

    return transformers
