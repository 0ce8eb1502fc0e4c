import json
from pathlib import Path
from typing import Any, Dict, Optional

import spacy
import typer
from wasabi import msg

from ..training.corpus import read_gold_docs
from ..training.ner_eval import evaluate_pipeline
from ..util import atomic_write_bytes, check_output_file
from ._app import app


@app.command("evaluate-ner")
def evaluate_ner_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name"),
    corpus: Path = typer.Argument(..., help="Gold docs with entities and kb ids: .spacy, .jsonl or PubTator", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    speed: bool = typer.Option(True, "--speed/--no-speed", help="Measure words per second with and without the linker"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for the CPU"),
) -> None:
    """Score a pipeline that finds and links entities: NER precision/recall/F1
    overall and per type, each linker's acc@1/acc@5 on the gold mentions, joint
    NER + linking P/R/F (span, label and id correct), and words per second."""
    if output is not None:
        check_output_file(output, inputs=[corpus])
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(pipeline)
    gold = read_gold_docs(nlp, corpus)
    scores = evaluate_pipeline(nlp, gold, speed=speed)
    print_scores(scores)
    if output is not None:
        atomic_write_bytes(output, json.dumps(scores, indent=2).encode("utf8"))
        msg.good(f"Wrote {output}")


def print_scores(scores: Dict[str, Any]) -> None:
    msg.info(f"{scores['docs']} docs, {scores['gold_ents']} gold entities")
    if not scores["gold_ents"]:
        msg.warn("The corpus has no gold entities: recall and linking accuracy are "
                 "undefined (shown as - or 0); expected a corpus with entities.")
    for key, title in (("ner", "NER (spans)"), ("joint", "Joint NER + linking")):
        if key in scores:
            s = scores[key]
            rows = [("ALL", *_prf(s))] + [(t, *_prf(v)) for t, v in sorted(s["per_type"].items())]
            msg.table(rows, header=(title, "P", "R", "F"), divider=True)
    if "linking" in scores:
        rows = [(name, v["mentions"], *(f"{v[k]:.3f}" for k in v if k.startswith("acc@")))
                for name, v in scores["linking"].items()]
        if rows:
            ks = [k for k in next(iter(scores["linking"].values())) if k.startswith("acc@")]
            msg.table(rows, header=("Linking on gold mentions", "mentions", *ks), divider=True)
    if "speed" in scores:
        for key, value in scores["speed"].items():
            msg.text(f"{key.replace('_', ' ')}: {value:,.0f}")


def _prf(s: Dict[str, Optional[float]]):
    """P, R and F in percent; "-" for a score that is undefined (None)."""
    return tuple("-" if s[k] is None else f"{100 * s[k]:.2f}" for k in ("p", "r", "f"))
