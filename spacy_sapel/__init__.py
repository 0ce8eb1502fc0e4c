"""spacy_sapel: spaCy entity linking with self-alignment-pretrained encoders and faiss.

The components and registered functions are declared as entry points, so spaCy finds
them (``nlp.add_pipe("sapel_linker")``, ``spacy.load``) without importing this package.
Importing it is cheap: the public names below load on first use.
"""
from typing import Any

from .about import __version__

_LAZY = {
    "SapelLinker": "spacy_sapel.pipeline",
    "LinkerKB": "spacy_sapel.pipeline",
    "SapEncoder": "spacy_sapel.encoder",
    "KnowledgeBase": "spacy_sapel.kb",
    "Concept": "spacy_sapel.kb",
    "DenseIndex": "spacy_sapel.index",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spacy_sapel' has no attribute {name!r}")
