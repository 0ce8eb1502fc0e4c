"""``evaluate-linking``: acc@1 / acc@5 of one or more encoders side by side on gold
mentions, as the NeMo entity-linking tutorial compares the base and SAP encoders."""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from wasabi import msg

from ..encoder import DEFAULT_ENCODER, SapEncoder
from ..errors import Errors, SapelError
from ..kb import KnowledgeBase
from ..kb.readers import READERS, read_kb
from ..training.linking_eval import evaluate_encoder, read_queries
from ..training.mentions import add_mention_aliases, add_mention_priors
from ..util import atomic_write_bytes, check_output_file, json_dumps
from ._app import app
from ._util import check_distinct_paths, parse_options


def _parse_encoder(spec: str) -> Tuple[str, str]:
    label, sep, path = spec.partition("=")
    return (label, path) if sep and label and path else (spec, spec)


@app.command("evaluate-linking")
def evaluate_linking_cli(
    queries: Path = typer.Argument(..., help="Gold mentions: a PubTator corpus or an ID<TAB>mention TSV", exists=True, dir_okay=False),
    encoder: List[str] = typer.Option([DEFAULT_ENCODER], "--encoder", "-e", help="Encoder to compare, as LABEL=PATH or PATH; repeatable (a pretrain-sap output's model-last, a model directory, or the default MiniLM)"),
    kb_inputs: List[Path] = typer.Option([], "--kb", help="Vocabulary file(s) to link against; repeatable"),
    reader: str = typer.Option("nemo_index", "--reader", "-r", help=f"KB reader for --kb: {', '.join(READERS)}"),
    reader_option: List[str] = typer.Option([], "--reader-option", help="Reader option as key=value; repeatable"),
    kb_dir: Optional[Path] = typer.Option(None, "--kb-dir", help="A build-kb directory whose KB (not its index) to use instead of --kb"),
    train_mentions: List[Path] = typer.Option([], "--train-mentions", help="PubTator training corpus whose unambiguous gold mentions are added to the KB as aliases; repeatable"),
    types: List[str] = typer.Option([], "--type", help="PubTator mention types to keep (e.g. Disease); repeatable"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="Override the encoders' pooling (cls or mean)"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Override the encoders' maximum tokens per name (default: saved value, else 25)"),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="Override the encoders' text normalisation: none or lower_punct"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the table as JSON"),
) -> None:
    """Print acc@1 and acc@5 of each encoder on the gold mentions: a mention is
    correct at k when any id of one of the top-k distinct concepts is in its gold id
    set (composite ids split on | and +)."""
    check_distinct_paths("--train-mentions", train_mentions)
    if output is not None:
        check_output_file(output, inputs=[queries, *kb_inputs])
    if kb_dir is not None:
        kb = KnowledgeBase.from_disk(kb_dir / "kb")
    elif kb_inputs:
        kb = read_kb(kb_inputs, reader, **parse_options(reader_option))
    else:
        raise SapelError(Errors.E402.format(what="knowledge base", value=None, options="--kb FILE... or --kb-dir DIR"))
    for corpus in train_mentions:
        added = add_mention_aliases(kb, corpus, types=types or None)
        counted, skipped = add_mention_priors(kb, corpus, types=types or None)
        msg.info(f"Added {added} training mentions of {corpus} as aliases, counted {counted} as priors (not counted: {skipped or 'none'})")
    gold = read_queries(queries, types=types or None)
    msg.info(f"{len(gold)} queries from {queries}; KB {len(kb)} concepts, {len(kb.alias_table()[0])} names")
    rows, report = [], []
    for spec in encoder:
        label, path = _parse_encoder(spec)
        enc = SapEncoder.from_pretrained(
            path, pooling=pooling, max_length=max_length, normalize=normalize, device=device
        )
        start = time.perf_counter()
        acc, errors = evaluate_encoder(kb, enc, gold)
        seconds = time.perf_counter() - start
        rows.append((
            label, f"{acc[1]:.3f}", f"{acc[5]:.3f}", enc.pooling, f"{seconds:.0f}",
            errors["errors"], errors["tie"], errors["in_top_k"], errors["not_in_top_k"],
        ))
        report.append({"encoder": label, "path": path, "acc@1": acc[1], "acc@5": acc[5], "pooling": enc.pooling, "errors": errors})
    header = ("encoder", "acc@1", "acc@5", "pooling", "seconds", "errors", "ties", "in top 5", "not in top 5")
    msg.table(rows, header=header, divider=True)
    msg.info("errors: mentions wrong at 1; ties: of those, the first two candidates score the same; in top 5 / not in top 5: where the right concept is")
    if output is not None:
        data = {"queries": str(queries), "n_queries": len(gold), "results": report}
        atomic_write_bytes(output, (json_dumps(data) + "\n").encode("utf8"))
