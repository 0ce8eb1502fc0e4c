from .linker import CANDIDATES_ATTR, SapelLinker, install_extensions, make_sapel_linker
from . import loaders, rerankers, scorer  # noqa: F401  (registrations)
from .linker_kb import LinkerKB

__all__ = [
    "CANDIDATES_ATTR",
    "LinkerKB",
    "SapelLinker",
    "install_extensions",
    "make_sapel_linker",
]
