"""``calibrate-nil``: choose a linker's NIL threshold from development data and print
the precision/recall curve it is chosen from."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from wasabi import msg

from ..errors import Errors, SapelError
from ..training.calibrate import ThresholdPoint, best_threshold, link_outcomes
from ..util import atomic_write_bytes
from ._app import app
from ._util import calibration_inputs


@app.command("calibrate-nil")
def calibrate_nil_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name with a sapel_linker"),
    corpus: Path = typer.Argument(..., help="Development docs with gold entities and kb ids (-1 or none = NIL): .spacy, .jsonl or PubTator", exists=True, dir_okay=False),
    linker: Optional[str] = typer.Option(None, "--linker", help="Name of the sapel_linker component (default: the only one)"),
    step: float = typer.Option(0.05, "--step", help="Print the curve at thresholds this far apart (the best point is exact)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the exact curve and the best threshold as JSON"),
) -> None:
    """Link the gold mentions of a development corpus, then print precision, recall
    and F1 of linking at each threshold (a mention is linked when its best score
    reaches the threshold; a wrong link is a false positive, and mentions whose gold
    concept is not in the KB should stay NIL), and the threshold with the best F1."""
    nlp, linker, gold = calibration_inputs(pipeline, corpus, linker, output)
    outcomes = link_outcomes(nlp, gold, linker)
    if not outcomes.top_scores:
        labels = nlp.get_pipe(linker).labels or "all"
        raise SapelError(Errors.E404.format(path=pipeline, name=linker, labels=labels, corpus=corpus))
    points = outcomes.curve()
    best = best_threshold(points)
    current = nlp.get_pipe(linker).cfg["threshold"]
    at_current = outcomes.curve([current])[0]
    n = len(outcomes.top_scores)
    n_nil = n - sum(outcomes.gold_in_kb)
    msg.info(f"{n} gold mentions for {linker!r}, {n_nil} of them NIL (gold concept not in the KB)")
    grid = [round(t, 6) for t in np.arange(0.0, 1.0 + step / 2, step)] if step > 0 else []
    shown = sorted({*grid, best.threshold, current})
    rows = [_row(p, best, current) for p in outcomes.curve(shown)]
    msg.table(rows, header=("threshold", "P", "R", "F1", "linked", "NIL kept", ""), divider=True)
    msg.good(
        f"Best threshold {best.threshold:.4f}: P {best.precision:.3f} R {best.recall:.3f} "
        f"F1 {best.f1:.3f} (now {current:g}: F1 {at_current.f1:.3f}). Set it with "
        f"--components.{linker}.threshold {best.threshold:.4f} when assembling or training, "
        f"or nlp.get_pipe({linker!r}).cfg['threshold'] = {best.threshold:.4f}."
    )
    if output is not None:
        data = {
            "linker": linker,
            "mentions": n,
            "nil_mentions": n_nil,
            "best": asdict(best),
            "current": asdict(at_current),
            "curve": [asdict(p) for p in points],
        }
        atomic_write_bytes(output, json.dumps(data, indent=2).encode("utf8"))
        msg.good(f"Wrote {output}")


def _row(point: ThresholdPoint, best: ThresholdPoint, current: float) -> List[str]:
    mark = "best" if point.threshold == best.threshold else ("current" if point.threshold == current else "")
    return [f"{point.threshold:.4f}", f"{point.precision:.3f}", f"{point.recall:.3f}",
            f"{point.f1:.3f}", str(point.linked), str(point.nil_correct), mark]
