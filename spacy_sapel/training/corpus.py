"""Documents of a corpus file in any of the formats the commands accept: a ``.spacy``
DocBin, JSONL, PubTator or plain text."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .jsonl import is_jsonl, read_jsonl_docs, read_text_docs
from .pubtator import is_pubtator
from .pubtator_docs import PMID_KEY, pubtator_to_docs


def read_corpus_docs(nlp: Language, path: Path, *, texts: bool = True) -> Iterator[Tuple[Doc, Optional[str]]]:
    """``(doc, title)`` for each document of a ``.spacy`` DocBin, a JSONL file
    (``{"text", "ents": [...]}``, found by content), a PubTator corpus (title: the PMID) or, with
    ``texts``, a plain-text file of one document per line (no entities). Without
    ``texts`` any other file is read as PubTator, so that a file of the wrong kind
    fails with a PubTator format error naming the line, instead of giving documents
    without gold entities."""
    path = Path(path)
    if path.suffix == ".spacy":
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
            yield doc, doc.user_data.get(PMID_KEY)
    elif is_jsonl(path):
        for doc, _ in read_jsonl_docs(nlp, path):
            yield doc, None
    elif not texts or is_pubtator(path):
        for doc in pubtator_to_docs(nlp, path):
            yield doc, doc.user_data.get(PMID_KEY)
    else:
        for doc in read_text_docs(nlp, path):
            yield doc, None


def read_gold_docs(nlp: Language, path: Path) -> List[Doc]:
    """The docs with gold entities and kb ids of a ``.spacy``, JSONL or PubTator file."""
    return [doc for doc, _ in read_corpus_docs(nlp, path, texts=False)]
