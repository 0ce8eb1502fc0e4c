"""``calibrate-veto``: choose the threshold of linking as evidence (the linker's
``veto_threshold``) from development data, and show what it does to NER precision,
recall and F and to joint NER + linking F."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from wasabi import msg

from ..errors import Errors, SapelError
from ..training.calibrate import VETO_OBJECTIVES, VetoPoint, best_veto, veto_outcomes
from ..util import atomic_write_bytes
from ._app import app
from ._util import calibration_inputs, check_choice


@app.command("calibrate-veto")
def calibrate_veto_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name: an NER followed by a sapel_linker"),
    corpus: Path = typer.Argument(..., help="Development docs with gold entities (kb ids for joint scores): .spacy, .jsonl or PubTator", exists=True, dir_okay=False),
    linker: Optional[str] = typer.Option(None, "--linker", help="Name of the sapel_linker component (default: the only one)"),
    objective: str = typer.Option("ner", "--objective", help="What the best threshold maximises: ner (NER span F over all types) or joint (joint NER + linking F on the linker's labels)"),
    step: float = typer.Option(0.05, "--step", help="Print the curve at thresholds this far apart (the best point is exact)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the exact curve and the best threshold as JSON"),
) -> None:
    """Run the pipeline on a development corpus with the veto off, then print NER
    P/R/F (overall and per type) and joint NER + linking F for each veto threshold (an
    entity of the linker's labels is dropped when its best link score is below it),
    and the threshold with the best F of ``--objective``, or that the veto does not help."""
    check_choice("--objective", objective, VETO_OBJECTIVES)
    nlp, linker, gold = calibration_inputs(pipeline, corpus, linker, output)
    outcomes = veto_outcomes(nlp, gold, linker)
    labels = nlp.get_pipe(linker).labels or ["all"]
    if not len(outcomes.scores):
        raise SapelError(Errors.E405.format(path=pipeline, name=linker, labels=", ".join(labels), corpus=corpus))
    points = outcomes.curve()
    off, best = points[0], best_veto(points, objective)
    current = nlp.get_pipe(linker).cfg["veto_threshold"]
    finite = outcomes.scores[np.isfinite(outcomes.scores)]
    low = float(finite.min()) if len(finite) else 0.0
    grid = [round(t, 6) for t in np.arange(0.0, 1.0 + step / 2, step) if t >= low - step] if step > 0 else []
    shown = outcomes.curve([None, *sorted({*grid, *(t for t in (best.threshold, current) if t is not None)})])
    judged = outcomes.label_names
    rows = [_row(p, judged, best, current) for p in shown]
    header = ("veto", "dropped", "of them right", "NER P", "NER R", "NER F", *(f"{label} F" for label in judged), "joint F", "")
    msg.info(f"{len(outcomes.scores)} predicted entities judged by {linker!r} (labels {', '.join(labels)})")
    msg.table(rows, header=header, divider=True)
    if best.threshold is None:
        name = "NER F" if objective == "ner" else "joint F"
        msg.good(f"No veto threshold improves {name} ({100 * getattr(off, objective)['f']:.2f}) on this "
                 f"corpus: leave veto_threshold null.")
    else:
        msg.good(
            f"Best veto_threshold {best.threshold:.4f}: NER F {100 * best.ner['f']:.2f} (off: "
            f"{100 * off.ner['f']:.2f}), joint F {100 * best.joint['f']:.2f} (off: "
            f"{100 * off.joint['f']:.2f}); drops {best.dropped} entities, {best.dropped_right} of "
            f"them right. Set it with --components.{linker}.veto_threshold {best.threshold:.4f} "
            f"when assembling or training."
        )
    if output is not None:
        data = {
            "linker": linker,
            "judged": len(outcomes.scores),
            "objective": objective,
            "best": asdict(best),
            "off": asdict(off),
            "curve": [asdict(p) for p in points],
        }
        atomic_write_bytes(output, json.dumps(data, indent=2).encode("utf8"))
        msg.good(f"Wrote {output}")


def _row(point: VetoPoint, judged: List[str], best: VetoPoint, current: Optional[float]) -> List[str]:
    mark = "best" if point.threshold == best.threshold else ("current" if point.threshold == current else "")
    per_type = [_pct(point.per_type.get(label, {"f": 0.0})["f"]) for label in judged]
    return ["off" if point.threshold is None else f"{point.threshold:.4f}", str(point.dropped),
            str(point.dropped_right), _pct(point.ner["p"]), _pct(point.ner["r"]), _pct(point.ner["f"]),
            *per_type, _pct(point.joint["f"]), mark]


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"
