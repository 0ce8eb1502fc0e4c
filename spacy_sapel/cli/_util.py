import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..errors import Errors
from ..pipeline.linker import SapelLinker
from ..training.jsonl import is_jsonl, read_jsonl_docs, read_text_docs
from ..training.pubtator import is_pubtator
from ..training.pubtator_docs import PMID_KEY, pubtator_to_docs
from ..util import DirMarker

#: a directory nlp.to_disk wrote (and so may be replaced by a command that writes one)
PIPELINE_MARKER = DirMarker("spaCy pipeline directory", ("config.cfg",))


def parse_options(pairs: List[str]) -> Dict[str, Any]:
    """``["nprobe=32", "languages=[\\"ENG\\"]"]`` -> ``{"nprobe": 32, "languages": ["ENG"]}``."""
    options: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(Errors.E402.format(what="option", value=pair, options="key=value"))
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip().replace("-", "_")] = value
    return options


def check_choice(what: str, value: str, options: Iterable[str]) -> None:
    options = list(options)
    if value not in options:
        raise ValueError(Errors.E402.format(what=what, value=value, options=", ".join(options)))


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


def select_linker(nlp: Language, pipeline: object, name: Optional[str]) -> str:
    """The name of the pipeline's sapel_linker called ``name``, or of its only one
    when ``name`` is None; E401/E403 otherwise."""
    linkers = [pipe_name for pipe_name, pipe in nlp.pipeline if isinstance(pipe, SapelLinker)]
    if not linkers:
        raise ValueError(Errors.E401.format(path=pipeline, pipes=", ".join(nlp.pipe_names)))
    if name is None and len(linkers) == 1:
        return linkers[0]
    if name not in linkers:
        raise ValueError(Errors.E403.format(path=pipeline, name=name, linkers=", ".join(linkers)))
    return name
