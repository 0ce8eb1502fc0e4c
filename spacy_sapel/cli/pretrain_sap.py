"""``pretrain-sap``: self-alignment pretraining of the linker's encoder on synonym
pairs (a KB or a NeMo pairs TSV), or fine-tuning on a labelled corpus (``--corpus``),
with SAP pairs or (``--objective retrieval``) against candidates retrieved from the KB."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..encoder import DEFAULT_ENCODER
from ..errors import Errors, SapelError
from ..kb.readers import READERS
from ..sap.recipe import OBJECTIVES, create_sap_pretrainer
from ..sap.retrieval import RetrievalResult
from ._app import app
from ._util import parse_options


@app.command("pretrain-sap")
def pretrain_sap_cli(
    output: Path = typer.Option(..., "--output", "-o", help="Output directory: model-last/ (the trained encoder), checkpoint/, training.json"),
    kb_inputs: List[Path] = typer.Option([], "--kb", help="Vocabulary file(s) whose synonyms give the pairs; repeatable", exists=True, dir_okay=False),
    reader: str = typer.Option("nemo_index", "--reader", "-r", help=f"KB reader for --kb: {', '.join(READERS)}"),
    reader_option: List[str] = typer.Option([], "--reader-option", help="Reader option as key=value; repeatable"),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="NeMo pairs TSV: ID<TAB>synonym1<TAB>synonym2", exists=True, dir_okay=False),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Fine-tune: PubTator training corpus; pairs (gold mention, each name of its gold concept in --kb)", exists=True, dir_okay=False),
    types: List[str] = typer.Option([], "--type", help="PubTator mention types to use from --corpus (e.g. Disease); repeatable"),
    kb_synonyms: bool = typer.Option(False, "--kb-synonyms/--no-kb-synonyms", help="With --corpus: also train on the KB's synonym pairs"),
    corpus_aliases: bool = typer.Option(False, "--corpus-aliases/--no-corpus-aliases", help="With --corpus: add its unambiguous mentions to the KB first, so mentions also pair with each other"),
    encoder: str = typer.Option(DEFAULT_ENCODER, "--encoder", "-e", help="Base encoder: a model directory, an earlier model-last, or the packaged MiniLM"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="cls or mean (default: what the encoder directory says)"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Maximum tokens per name (default: the base encoder's saved value, else 25)"),
    normalize: Optional[str] = typer.Option(None, "--normalize", help="Text normalisation saved with the encoder: none or lower_punct (default: the base encoder's)"),
    max_pairs_per_concept: int = typer.Option(50, "--max-pairs-per-concept", help="Cap on pairs per concept (per mention with --corpus)"),
    validation_fraction: float = typer.Option(0.0, "--validation-fraction", help="Fraction of concepts held out for synonym-retrieval validation"),
    objective: str = typer.Option("sap", "--objective", help=f"{' or '.join(OBJECTIVES)}: SAP pairs (multi-similarity loss), or each --corpus mention against candidates retrieved from the whole --kb (BioSyn's marginal likelihood)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Pairs per batch, hard pairs mined inside it (default 64); with --objective retrieval, mentions per batch (default 16)"),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Batches per optimizer step"),
    lr: float = typer.Option(2e-5, "--lr", help="AdamW learning rate"),
    weight_decay: float = typer.Option(0.01, "--weight-decay"),
    epochs: int = typer.Option(1, "--epochs"),
    max_steps: int = typer.Option(0, "--max-steps", help="Optimizer steps (0: --epochs over the pairs)"),
    warmup_ratio: float = typer.Option(0.0, "--warmup-ratio", help="Fraction of steps with linear warm-up"),
    batching: str = typer.Option("random", "--batching", help="random (SapBERT) or hard: batches of neighbouring, confusable concepts (neighbours by the base encoder)"),
    concepts_per_batch: int = typer.Option(8, "--concepts-per-batch", help="With --batching hard: about this many concepts share a batch"),
    candidates: int = typer.Option(20, "--candidates", help="With --objective retrieval: names retrieved per mention"),
    refresh_every: int = typer.Option(0, "--refresh-every", help="With --objective retrieval: retrieve afresh every N steps (0: every epoch)"),
    refresh_names: int = typer.Option(0, "--refresh-names", help="With --objective retrieval: 0 re-encodes the whole KB at each refresh; N re-encodes the names of the concepts retrieved last time plus N random names"),
    training_option: List[str] = typer.Option([], "--training-option", help="Other SapConfig field as key=value (alpha, beta, base, miner_margin, type_of_triplets, freeze_embeddings, max_validation_pairs; with --objective retrieval: scale, freeze_embeddings); repeatable"),
    seed: int = typer.Option(42, "--seed"),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Write a checkpoint every N optimizer steps"),
    max_seconds: float = typer.Option(0.0, "--max-seconds", help="Stop (and checkpoint) after this many seconds; 0: no limit"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (mixed precision on CUDA)"),
) -> None:
    """Train an encoder with SapBERT's recipe (multi-similarity loss on hard pairs
    mined in each batch), or with `--objective retrieval` on each --corpus mention
    against the names the current encoder retrieves from the whole --kb (BioSyn's
    marginal likelihood of the gold concept's names). Use OUTPUT/model-last as
    `--encoder` of build-kb, or as the encoder of a further fine-tuning run."""
    retrieval = objective == "retrieval"
    unused = (
        [("--batching", batching, "random"), ("--concepts-per-batch", concepts_per_batch, 8)]
        if retrieval
        else [("--candidates", candidates, 20), ("--refresh-every", refresh_every, 0), ("--refresh-names", refresh_names, 0)]
    )
    for name, value, default in unused:
        if value != default:
            raise SapelError(Errors.E621.format(name=name, value=value, objective=objective, default=default))
    if retrieval:
        own = {"n_candidates": candidates, "refresh_every": refresh_every, "refresh_names": refresh_names}
    else:
        own = {"batching": batching, "concepts_per_batch": concepts_per_batch}
    training = {
        "batch_size": batch_size if batch_size is not None else (16 if retrieval else 64),
        "grad_accum": grad_accum,
        "lr": lr,
        "weight_decay": weight_decay,
        "epochs": epochs,
        "max_steps": max_steps,
        "warmup_ratio": warmup_ratio,
        **own,
        "seed": seed,
        "checkpoint_every": checkpoint_every,
        "max_seconds": max_seconds,
        **parse_options(training_option),
    }
    run = create_sap_pretrainer(
        base_encoder=encoder,
        kb_paths=[str(p) for p in kb_inputs],
        reader=reader,
        reader_options=parse_options(reader_option),
        pairs_path=str(pairs) if pairs else None,
        corpus=str(corpus) if corpus else None,
        corpus_types=types or None,
        kb_synonyms=kb_synonyms,
        corpus_aliases=corpus_aliases,
        pooling=pooling,
        max_length=max_length,
        normalize=normalize,
        max_pairs_per_concept=max_pairs_per_concept,
        validation_fraction=validation_fraction,
        device=device,
        training=training,
        objective=objective,
    )
    result = run(output, resume=resume)
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
