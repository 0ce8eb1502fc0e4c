"""Ray commands: ``build-kb-ray`` and ``annotate-ray`` (optional extra ``[ray]``)."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .. import _compat
from ..distributed import annotate_ray, ray_embedder, start_ray
from ..errors import Errors
from . import _kb_options as opts
from ._app import app


def _start_ray(address: Optional[str], num_cpus: Optional[int]) -> None:
    """:func:`~spacy_sapel.distributed.start_ray`, with a clear exit without Ray."""
    if not _compat.HAS_RAY:
        msg.fail(Errors.E701, exits=1)
    start_ray(address, num_cpus=num_cpus)


@app.command("build-kb-ray")
def build_kb_ray_cli(
    inputs: List[Path] = opts.INPUTS,
    output: Path = opts.OUTPUT,
    reader: str = opts.READER,
    reader_option: List[str] = opts.READER_OPTION,
    encoder: str = opts.ENCODER,
    pooling: Optional[str] = opts.POOLING,
    max_length: Optional[int] = opts.MAX_LENGTH,
    batch_size: int = opts.BATCH_SIZE,
    runtime: Optional[str] = opts.RUNTIME,
    index_type: str = typer.Option("auto", "--index-type", "-t", help=opts.INDEX_TYPE_HELP),
    index_option: List[str] = opts.INDEX_OPTION,
    sparse: bool = opts.SPARSE,
    name: str = opts.NAME,
    train_mentions: List[Path] = opts.TRAIN_MENTIONS,
    train_mention_types: List[str] = opts.TRAIN_MENTION_TYPES,
    num_actors: int = typer.Option(2, "--num-actors", help="Encoder actors (one encoder each)"),
    num_gpus: Optional[float] = typer.Option(None, "--num-gpus", help="GPUs per actor (default: 1 when the cluster has GPUs, else 0)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)"),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="CPUs of a local Ray instance"),
    overwrite: bool = opts.OVERWRITE,
    priors: bool = opts.PRIORS,
) -> None:
    """As `build-kb`, with the names embedded by a pool of Ray actors."""
    index_options = opts.check_build(
        output, inputs, train_mentions, encoder, index_type=index_type,
        index_option=index_option, runtime=runtime, overwrite=overwrite,
    )
    _start_ray(address, num_cpus)
    kb = opts.read_vocabulary(
        inputs, reader, reader_option, name, train_mentions, train_mention_types, priors=priors
    )
    # the driver's encoder only saves itself for the actors and fingerprints the index
    enc = opts.load_encoder(encoder, pooling, max_length, batch_size, "cpu", runtime)
    opts.build(
        output, inputs, train_mentions, kb, enc, encoder=encoder, index_type=index_type,
        index_options=index_options, sparse=sparse, overwrite=overwrite,
        embed=ray_embedder(enc, num_actors=num_actors, num_gpus=num_gpus),
    )


@app.command("annotate-ray")
def annotate_ray_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory", exists=True, file_okay=False),
    input_path: Path = typer.Argument(..., help="JSONL ({'text', optional 'ents'}) or text file (one document per line)", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Directory of part-NNNNN.jsonl / .spacy shards to write"),
    output_format: str = typer.Option("jsonl", "--format", "-f", help="jsonl (records as `link` writes them) or docbin"),
    num_actors: int = typer.Option(2, "--num-actors", help="Pipeline actors (one pipeline each)"),
    batch_size: int = typer.Option(64, "--batch-size", help="Documents per nlp.pipe batch"),
    docs_per_task: int = typer.Option(256, "--docs-per-task", help="Documents sent to an actor at a time"),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Documents per JSONL shard"),
    num_gpus: Optional[float] = typer.Option(None, "--num-gpus", help="GPUs per actor (default 0)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)"),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="CPUs of a local Ray instance"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory that does not hold annotate-ray shards"),
) -> None:
    """Annotate a large corpus with a saved pipeline in a pool of Ray actors; the
    output equals what `link` writes, split into shards."""
    _start_ray(address, num_cpus)

    annotate_ray(
        pipeline,
        input_path,
        output,
        output_format=output_format,
        num_actors=num_actors,
        batch_size=batch_size,
        docs_per_task=docs_per_task,
        shard_size=shard_size,
        num_gpus=num_gpus,
        overwrite=overwrite,
    )
