from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import spacy
import typer
from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc
from wasabi import msg

from ..errors import Errors, SapelError
from ..pipeline.describe import DEFAULT_URL_TEMPLATE, display_options, links_data, render_links
from ..pipeline.linker import find_linkers
from ..training.corpus import read_corpus_docs
from ..util import atomic_write_bytes, check_output_file
from ._app import app

LOCALHOST = "127.0.0.1"


def read_input_docs(nlp: Language, path: Path, *, gold_ents: bool) -> Iterator[Tuple[Doc, Optional[str]]]:
    """``(doc, title)`` for a .spacy, .jsonl, PubTator or plain-text file: with
    ``gold_ents`` the file's entities are kept (only linked), otherwise the pipeline
    finds them in the text."""
    for doc, title in read_corpus_docs(nlp, path):
        yield (doc if gold_ents else nlp.make_doc(doc.text)), title


def parse_url_templates(pairs: List[str]) -> Dict[str, str]:
    templates = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or "{}" not in value:
            raise SapelError(Errors.E402.format(what="KB URL template", value=pair,
                                                options="KB_NAME=https://…{}… or PREFIX:=https://…{}…"))
        templates[key] = value
    return templates


@app.command("visualize")
def visualize_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name", exists=False),
    input_path: Optional[Path] = typer.Argument(None, help="Corpus: .spacy, .jsonl, PubTator or plain text (one doc per line)", exists=True, dir_okay=False),
    text: List[str] = typer.Option([], "--text", "-t", help="A text to link (repeatable); instead of or with INPUT"),
    output: Path = typer.Option(Path("links.html"), "--output", "-o", help="The standalone HTML page to write"),
    gold_ents: bool = typer.Option(False, "--gold-ents", help="Keep the corpus's entities and only link them (default: the pipeline's NER finds them)"),
    url_template: str = typer.Option(DEFAULT_URL_TEMPLATE, "--url-template", help="Default link for a KB id; {} is the id"),
    kb_url: List[str] = typer.Option([], "--kb-url", help="KB_NAME=TEMPLATE or ID_PREFIX:=TEMPLATE (repeatable), e.g. umls=https://uts.nlm.nih.gov/uts/umls/concept/{}"),
    limit: int = typer.Option(50, "--limit", "-n", help="Documents to show (0: all)"),
    serve: bool = typer.Option(False, "--serve", help=f"Also serve the page with displacy.serve on {LOCALHOST}"),
    port: int = typer.Option(5000, "--port", help="Port for --serve"),
) -> None:
    """Write a standalone displaCy page of linked entities: each shows its label and,
    as a link, its KB id and canonical name; hovering shows the runner-up candidates."""
    check_output_file(output, inputs=[input_path] if input_path is not None else [])
    nlp = spacy.load(pipeline)
    items: List[Tuple[Doc, Optional[str]]] = [(nlp.make_doc(t), None) for t in text]
    if input_path is not None:
        for i, item in enumerate(read_input_docs(nlp, input_path, gold_ents=gold_ents)):
            if limit and i >= limit:
                break
            items.append(item)
    if not items:
        raise SapelError(Errors.E402.format(what="input", value="nothing", options="INPUT or --text"))
    if gold_ents:
        linkers = [name for name, _ in find_linkers(nlp)]
        with nlp.select_pipes(enable=linkers):
            docs = list(nlp.pipe(doc for doc, _ in items))
    else:
        docs = list(nlp.pipe(doc for doc, _ in items))
    templates = parse_url_templates(kb_url)
    titles = [title for _, title in items]
    html_page = render_links(nlp, docs, url_template=url_template, url_templates=templates, titles=titles)
    atomic_write_bytes(output, html_page.encode("utf8"))
    n_ents = sum(len(d.ents) for d in docs)
    n_linked = sum(1 for d in docs for e in d.ents if e.kb_id_)
    msg.good(f"Wrote {output}: {len(docs)} docs, {n_ents} entities, {n_linked} linked")
    if serve:
        data = links_data(nlp, docs, url_template=url_template, url_templates=templates, titles=titles)
        displacy.serve(data, style="ent", manual=True, options=display_options(data), host=LOCALHOST, port=port)
