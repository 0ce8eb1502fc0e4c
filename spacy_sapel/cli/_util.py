import json
from typing import Any, Dict, Iterable, List

from ..errors import Errors


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


def read_gold_docs(nlp, corpus):
    """Gold docs with entities and kb ids from a ``.spacy`` DocBin, a JSONL file
    (``{"text", "ents": [...]}``) or a PubTator corpus."""
    from pathlib import Path

    from spacy.tokens import DocBin

    from ..training.jsonl import read_jsonl_docs
    from ..training.pubtator_docs import pubtator_to_docs

    corpus = Path(corpus)
    if corpus.suffix == ".spacy":
        return list(DocBin().from_disk(corpus).get_docs(nlp.vocab))
    if corpus.suffix == ".jsonl":
        return [doc for doc, _ in read_jsonl_docs(nlp, corpus)]
    return list(pubtator_to_docs(nlp, corpus))
