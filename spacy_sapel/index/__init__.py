"""Dense vector indexes: build, search, save and load faiss indexes over L2-normalised
vectors, and choose the device searches run on. Knows nothing of spaCy, KBs or
encoders."""
from .dense_index import INDEX_TYPES, DenseIndex, auto_nlist
from .device import DEVICES, choose_search_backend

__all__ = ["DEVICES", "INDEX_TYPES", "DenseIndex", "auto_nlist", "choose_search_backend"]
