from pathlib import Path

import spacy
import srsly
import typer
from wasabi import msg

from ..progress import progress
from ..pipeline.annotate import annotate
from ..pipeline.describe import describe_entities
from ..training import INPUT_FORMATS, read_input_docs
from ..util import atomic_write_path, check_output_file
from ._app import app
from ._util import check_choice, linker_names


@app.command("link")
def link_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name"),
    input_path: Path = typer.Argument(..., help="JSONL ({'text', optional 'ents'}) or text file (one document per line), plain or gzipped"),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write, one document per line"),
    input_format: str = typer.Option("auto", "--format", "-f", help=f"Input format: {', '.join(INPUT_FORMATS)} (auto: JSONL when the first non-empty line is a JSON object, whatever the file's name)"),
    batch_size: int = typer.Option(64, "--batch-size", help="Documents per batch"),
) -> None:
    """Link the entities of every document and write them, with ids, names, scores and
    candidates, as JSONL. Documents given with `ents` keep them (components that set
    entities are skipped for them); plain texts go through the whole pipeline."""
    check_choice("input format", input_format, INPUT_FORMATS)
    check_output_file(output, inputs=[input_path])
    nlp = spacy.load(pipeline)
    linker_names(nlp, pipeline)
    stream = read_input_docs(nlp, input_path, input_format=input_format)
    n_docs = n_ents = 0
    with atomic_write_path(output) as tmp, tmp.open("w", encoding="utf8") as f:
        for doc in progress(annotate(nlp, stream, batch_size=batch_size), desc="Linking", unit="doc"):
            ents = describe_entities(nlp, doc)
            f.write(srsly.json_dumps({"text": doc.text, "ents": ents}) + "\n")
            n_docs += 1
            n_ents += len(ents)
    msg.good(f"Linked {n_ents} entities in {n_docs} documents -> {output}")

