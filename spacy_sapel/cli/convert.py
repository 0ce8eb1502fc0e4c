import warnings
from pathlib import Path
from typing import List

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

from ..errors import Errors, SapelError
from ..progress import progress
from ..training.conll import IOB_WARNINGS, read_iob_docs
from ..training.jsonl import read_jsonl_docs
from ..training.pubtator_docs import MISALIGNED_POLICIES, emit_pubtator_warnings, pubtator_to_docs
from ..training.report import CorpusReport
from ..util import atomic_write_path, check_output_file
from ._app import app
from ._util import check_choice

FORMATS = ("pubtator", "iob", "conll", "jsonl")
_SUFFIXES = {".iob": "iob", ".tsv": "iob", ".conll": "conll", ".jsonl": "jsonl"}


def guess_format(path: Path) -> str:
    if path.suffix in _SUFFIXES:
        return _SUFFIXES[path.suffix]
    if path.suffix == ".txt":
        with open(path, encoding="utf8", errors="replace") as f:
            head = f.read(2000)
        if "|t|" in head or "|a|" in head:
            return "pubtator"
        return "conll"
    raise SapelError(Errors.E507.format(path=path))


@app.command("convert")
def convert_cli(
    inputs: List[Path] = typer.Argument(..., help="Corpus file(s), all of one format", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="The .spacy (DocBin) file to write"),
    fmt: str = typer.Option("auto", "--format", "-f", help=f"auto or one of: {', '.join(FORMATS)}"),
    label: List[str] = typer.Option([], "--label", "-l", help="PubTator type mapping TYPE=LABEL (repeatable); when given, other types are skipped and counted"),
    misaligned: str = typer.Option("split", "--misaligned", help=f"Mentions off token boundaries: {', '.join(MISALIGNED_POLICIES)}"),
    n_sents: int = typer.Option(10, "--n-sents", "-n", help="IOB/CoNLL without -DOCSTART-: sentences per doc (0: one doc per file)"),
    invalid_tags: str = typer.Option("fix", "--invalid-tags", help="I- without B-: fix (count, start an entity) or error"),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer"),
) -> None:
    """Convert PubTator (entities with kb ids), token-per-line IOB (`token<TAB>tag`),
    CoNLL-2003 (`-DOCSTART-`) or JSONL corpora to a .spacy file for `spacy train`.
    Dropped, split or skipped mentions are counted and reported with examples."""
    check_output_file(output, inputs=inputs)
    nlp = spacy.blank(lang)
    label_map = None
    if label:
        label_map = {}
        for pair in label:
            key, sep, value = pair.partition("=")
            if not sep or not key or not value:
                raise SapelError(Errors.E402.format(what="label mapping", value=pair, options="TYPE=LABEL"))
            label_map[key] = value
    docbin = DocBin(store_user_data=True)
    total = CorpusReport(path=", ".join(map(str, inputs)))
    for path in inputs:
        kind = guess_format(path) if fmt == "auto" else fmt
        check_choice("format", kind, FORMATS)
        report = CorpusReport(path=str(path))
        if kind == "pubtator":
            docs = pubtator_to_docs(nlp, path, label_map=label_map, misaligned=misaligned, report=report)
        elif kind in ("iob", "conll"):
            docs = read_iob_docs(nlp.vocab, path, n_sents=n_sents, invalid_tags=invalid_tags, report=report)
        else:
            docs = (doc for doc, _ in read_jsonl_docs(nlp, path))
        for doc in progress(docs, desc=f"Converting {path.name}", unit="doc"):
            docbin.add(doc)
            if kind == "jsonl":
                report.docs += 1
                report.ents += len(doc.ents)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if kind == "pubtator":
                emit_pubtator_warnings(report, misaligned=misaligned, label_map=label_map)
            else:
                report.emit(IOB_WARNINGS)
        for warning in caught:
            msg.warn(str(warning.message))
        total.merge(report)
    with atomic_write_path(output) as tmp:
        docbin.to_disk(tmp)
    msg.good(f"Wrote {output}: {total.docs} docs, {total.ents} entities")
    if total.counts:
        msg.table(total.rows(), header=("problem", "count", "examples"), divider=True)
