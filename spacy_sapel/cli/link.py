from itertools import groupby
from pathlib import Path
from typing import Iterable, Iterator

import spacy
import srsly
import typer
from spacy.language import Language
from spacy.tokens import Doc
from wasabi import msg

from ..errors import Errors
from ..pipeline import SapelLinker
from ..pipeline.describe import describe_entities
from ..training import read_jsonl_docs, read_text_docs
from ..util import atomic_write_path
from ._app import app


@app.command("link")
def link_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name"),
    input_path: Path = typer.Argument(..., help="JSONL ({'text', optional 'ents'}) or text file (one document per line)"),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write, one document per line"),
    batch_size: int = typer.Option(64, "--batch-size", help="Documents per batch"),
) -> None:
    """Link the entities of every document and write them, with ids, names, scores and
    candidates, as JSONL. Documents given with `ents` keep them (components that set
    entities are skipped for them); plain texts go through the whole pipeline."""
    nlp = spacy.load(pipeline)
    check_has_linker(nlp, pipeline)
    if input_path.suffix == ".jsonl":
        stream = read_jsonl_docs(nlp, input_path)
    else:
        stream = ((doc, False) for doc in read_text_docs(nlp, input_path))
    n_docs = n_ents = 0
    with atomic_write_path(output) as tmp, tmp.open("w", encoding="utf8") as f:
        for doc in annotate(nlp, stream, batch_size=batch_size):
            ents = describe_entities(nlp, doc)
            f.write(srsly.json_dumps({"text": doc.text, "ents": ents}) + "\n")
            n_docs += 1
            n_ents += len(ents)
    msg.good(f"Linked {n_ents} entities in {n_docs} documents -> {output}")


def check_has_linker(nlp: Language, source: object) -> None:
    if not any(isinstance(pipe, SapelLinker) for _, pipe in nlp.pipeline):
        raise ValueError(Errors.E401.format(path=source, pipes=nlp.pipe_names))


def annotate(
    nlp: Language, stream: Iterable[tuple], *, batch_size: int = 64
) -> Iterator[Doc]:
    """Run the pipeline over ``(doc, has_ents)`` pairs, skipping the components that
    set ``doc.ents`` for docs whose entities are given."""
    setters = {
        name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns
    }
    for has_ents, group in groupby(stream, key=lambda item: item[1]):
        docs: Iterable[Doc] = (doc for doc, _ in group)
        for name, proc in nlp.pipeline:
            if has_ents and name in setters:
                continue
            docs = proc.pipe(docs, batch_size=batch_size) if hasattr(proc, "pipe") else map(proc, docs)
        yield from docs
