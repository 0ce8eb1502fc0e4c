"""Dense vector indexes: build, search, save and load faiss indexes over L2-normalised
vectors, and choose the device searches run on. Knows nothing of spaCy, KBs or
encoders."""
from .dense_index import (
    GPU_SHARDING,
    INDEX_OPTIONS,
    INDEX_TYPES,
    STORAGES,
    DenseIndex,
    auto_nlist,
    factory_string,
    resolve_index_type,
)
from .device import DEVICES, choose_search_backend

__all__ = [
    "DEVICES",
    "GPU_SHARDING",
    "INDEX_OPTIONS",
    "INDEX_TYPES",
    "STORAGES",
    "DenseIndex",
    "auto_nlist",
    "choose_search_backend",
    "factory_string",
    "resolve_index_type",
]
