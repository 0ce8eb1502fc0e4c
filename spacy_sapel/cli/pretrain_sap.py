"""``pretrain-sap``: train the linker's encoder as a SAP config says (``configs/sap.cfg``:
self-alignment pretraining on a vocabulary's synonym pairs; ``configs/sap_finetune.cfg``:
fine-tuning on a labelled corpus), with ``[paths]`` and any setting overridden on the
command line as in ``spacy train``."""
from __future__ import annotations

from pathlib import Path

import typer
from click import NoSuchOption
from spacy.cli._util import parse_config_overrides
from wasabi import msg

from ..errors import Errors, SapelError
from ..sap.config import pretrain_sap
from ..sap.retrieval import RetrievalResult
from ._app import app


@app.command(
    "pretrain-sap", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def pretrain_sap_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="SAP training config, e.g. configs/sap.cfg", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Output directory: model-last/ (the trained encoder), checkpoint/, config.cfg, training.json"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint; the config must equal OUTPUT/config.cfg"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (mixed precision on CUDA)"),
) -> None:
    """Train an encoder as the config's [sap] block says: SapBERT's recipe
    (multi-similarity loss on hard pairs mined in each batch), or with
    objective "retrieval" each corpus mention against the names the current encoder
    retrieves from the whole KB (BioSyn). Override [paths] and any setting with dotted
    options, e.g. --paths.kb vocab.tsv --sap.training.lr 3e-5. Use
    OUTPUT/model-last as the encoder of build-kb, or of a further fine-tuning run."""
    try:
        overrides = parse_config_overrides(ctx.args)
    except NoSuchOption as err:  # spaCy's click, not the one typer runs on
        raise SapelError(Errors.E638.format(option=err.option_name)) from err
    result = pretrain_sap(config_path, output, overrides=overrides, resume=resume, device=device)
    if isinstance(result, RetrievalResult):
        refresh_seconds = sum(r["seconds"] for r in result.refreshes)
        msg.good(
            f"Trained {result.steps} steps in {result.seconds:.0f}s "
            f"({result.mentions_per_second:.1f} mentions/s, final loss {result.final_loss:.4f}; "
            f"{len(result.refreshes)} candidate refreshes took {refresh_seconds:.0f}s); "
            f"encoder written to {result.model_dir}"
        )
        return
    msg.good(
        f"Trained {result.steps} steps in {result.seconds:.0f}s "
        f"({result.pairs_per_second:.1f} pairs/s, final loss {result.final_loss:.4f}); "
        f"encoder written to {result.model_dir}"
    )
    if result.validation:
        msg.info(
            f"Validation synonym acc@1: {result.validation['before']:.3f} -> "
            f"{result.validation['after']:.3f}"
        )
