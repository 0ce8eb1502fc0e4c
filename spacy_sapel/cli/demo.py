from pathlib import Path
from typing import Optional

import spacy
import typer
from wasabi import msg

from ..encoder import DEFAULT_ENCODER
from ..kb.readers import read_kb
from ..pipeline.describe import describe_entities, render_links
from ..pipeline.linker_kb import LinkerKB
from ..pipeline.loaders import create_encoder, create_kb_dir_loader
from ..training import read_jsonl_docs
from ..util import atomic_write_bytes
from ._app import app

EXAMPLE_DIR = Path(__file__).parent.parent / "example"


@app.command("demo")
def demo_cli(
    output_dir: Path = typer.Option(Path("example_output"), "--output-dir", "-o", help="Where to write the KB, pipeline and HTML"),
    encoder: str = typer.Option(DEFAULT_ENCODER, "--encoder", "-e", help="Encoder directory or name"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="cls or mean (default: from the encoder directory)"),
) -> None:
    """The main job on the shipped example: build a KB of 47 diseases with the encoder,
    put a sapel_linker into a pipeline, link the example texts, print a table and
    write a displaCy page with the links."""
    kb = read_kb(EXAMPLE_DIR / "diseases.jsonl", "scispacy", name="example-diseases")
    msg.info(f"Example KB: {len(kb)} concepts, {len(kb.alias_table()[0])} names")
    enc = create_encoder(encoder, pooling=pooling)()
    kb_dir = output_dir / "kb"
    LinkerKB.build(kb, enc, index_type="flat").to_disk(kb_dir)
    msg.good(f"Built and saved the KB directory {kb_dir}")

    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config={"top_k": 3, "threshold": 0.6})
    nlp.get_pipe("sapel_linker").initialize(kb_loader=create_kb_dir_loader(kb_dir))
    pipeline_dir = output_dir / "pipeline"
    nlp.to_disk(pipeline_dir)
    nlp = spacy.load(pipeline_dir)
    msg.good(f"Saved and reloaded the pipeline {pipeline_dir}")

    pairs = list(read_jsonl_docs(nlp, EXAMPLE_DIR / "texts.jsonl"))
    gold = [[ent.kb_id_ for ent in doc.ents] for doc, _ in pairs]
    docs = list(nlp.pipe(doc for doc, _ in pairs))
    rows, correct, total = [], 0, 0
    for doc, doc_gold in zip(docs, gold):
        for record, gold_id in zip(describe_entities(nlp, doc), doc_gold):
            ok = record["kb_id"] == gold_id
            correct += ok
            total += 1
            score = f"{record['candidates'][0]['score']:.3f}" if record["candidates"] else ""
            rows.append((record["text"], record["kb_id"] or "NIL", record["name"], score, gold_id or "NIL", "yes" if ok else "no"))
    msg.table(rows, header=("mention", "kb_id", "name", "top score", "gold", "correct"), divider=True)
    msg.info(f"{correct}/{total} mentions linked as in the example's gold ids (accuracy {correct / max(total, 1):.3f})")
    html_path = output_dir / "links.html"
    atomic_write_bytes(html_path, render_links(nlp, docs).encode("utf8"))
    msg.good(f"Wrote displaCy page {html_path}")
