from .linker import (
    CANDIDATES_ATTR,
    SapelLinker,
    find_linkers,
    install_extensions,
    make_sapel_linker,
)
from . import loaders, rerankers, scorer, tokenizer, vocab_feature  # noqa: F401  (registrations)
from .vocab_tagger import VocabTagger
from .abbreviation_ents import AbbreviationEnts
from .linker_kb import LinkerKB

__all__ = [
    "AbbreviationEnts",
    "CANDIDATES_ATTR",
    "LinkerKB",
    "SapelLinker",
    "VocabTagger",
    "find_linkers",
    "install_extensions",
    "make_sapel_linker",
]
