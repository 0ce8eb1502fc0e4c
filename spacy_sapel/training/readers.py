"""Registered corpus readers for ``[corpora]`` blocks (``@readers``): PubTator and
token-per-line IOB/CoNLL files straight into ``spacy train`` without a converted
``.spacy`` file."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .conll import read_iob_docs
from .pubtator_docs import pubtator_to_docs


def _examples(nlp: Language, docs: Iterable[Doc], limit: int) -> Iterator[Example]:
    for i, reference in enumerate(docs):
        if limit and i >= limit:
            break
        yield Example(nlp.make_doc(reference.text), reference)


@registry.readers("sapel.pubtator_corpus.v1")
def create_pubtator_corpus(
    path: Path,
    label_map: Optional[Dict[str, str]] = None,
    misaligned: str = "split",
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """``sapel.pubtator_corpus.v1``: examples from a PubTator file, entities with kb
    ids (policies as in :func:`~spacy_sapel.training.pubtator_to_docs`)."""

    def read(nlp: Language) -> Iterator[Example]:
        docs = pubtator_to_docs(nlp, path, label_map=label_map, misaligned=misaligned)
        return _examples(nlp, docs, limit)

    return read


@registry.readers("sapel.iob_corpus.v1")
def create_iob_corpus(
    path: Path,
    n_sents: int = 10,
    invalid_tags: str = "fix",
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """``sapel.iob_corpus.v1``: examples from a ``token<TAB>tag`` or CoNLL-2003 file
    (see :func:`~spacy_sapel.training.read_iob_docs`)."""

    def read(nlp: Language) -> Iterator[Example]:
        docs = read_iob_docs(nlp.vocab, path, n_sents=n_sents, invalid_tags=invalid_tags)
        return _examples(nlp, docs, limit)

    return read
