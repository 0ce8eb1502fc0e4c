"""Ray commands: ``build-kb-ray`` and ``annotate-ray`` (optional extra ``[ray]``)."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .. import _compat
from ..encoder import DEFAULT_ENCODER, SapEncoder
from ..errors import Errors
from ..index import INDEX_TYPES
from ..kb.readers import READERS, read_kb
from ._app import app
from ._util import check_choice, parse_options


def _start_ray(address: Optional[str], num_cpus: Optional[int]) -> None:
    """Connect to ``address`` or start a local Ray; a clear exit without Ray."""
    if not _compat.HAS_RAY:
        msg.fail(Errors.E701, exits=1)
    ray = _compat.import_ray()
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            log_to_driver=False,
        )


@app.command("build-kb-ray")
def build_kb_ray_cli(
    inputs: List[Path] = typer.Argument(..., help="Vocabulary file(s) to read", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write (encoder/, kb/, index/)"),
    reader: str = typer.Option("nemo_index", "--reader", "-r", help=f"KB reader: {', '.join(READERS)}, or a registered name"),
    reader_option: List[str] = typer.Option([], "--reader-option", help="Reader option as key=value; repeatable"),
    encoder: str = typer.Option(DEFAULT_ENCODER, "--encoder", "-e", help="Encoder directory or name (nothing is downloaded)"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="cls or mean (default: from the encoder directory)"),
    max_length: int = typer.Option(25, "--max-length", help="Maximum tokens per name"),
    batch_size: int = typer.Option(128, "--batch-size", help="Names per encoder batch"),
    index_type: str = typer.Option("auto", "--index-type", "-t", help=f"Index type: {', '.join(INDEX_TYPES)}"),
    index_option: List[str] = typer.Option([], "--index-option", help="Index option as key=value; repeatable"),
    name: str = typer.Option("kb", "--name", help="KB name stored in its metadata"),
    num_actors: int = typer.Option(2, "--num-actors", help="Encoder actors (one encoder each)"),
    num_gpus: Optional[float] = typer.Option(None, "--num-gpus", help="GPUs per actor (default: 1 when the cluster has GPUs, else 0)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)"),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="CPUs of a local Ray instance"),
) -> None:
    """As `build-kb`, with the names embedded by a pool of Ray actors."""
    _start_ray(address, num_cpus)
    from ..distributed import build_linker_kb_ray

    check_choice("index type", index_type, INDEX_TYPES)
    kb = read_kb(inputs, reader, name=name, **parse_options(reader_option))
    msg.info(f"Read {len(kb)} concepts with {kb.n_names} distinct names")
    enc = SapEncoder.from_pretrained(
        encoder, pooling=pooling, max_length=max_length, batch_size=batch_size, device="cpu"
    )
    linker_kb = build_linker_kb_ray(
        kb,
        enc,
        index_type=index_type,
        index_options=parse_options(index_option),
        num_actors=num_actors,
        num_gpus=num_gpus,
    )
    linker_kb.to_disk(output)
    msg.good(f"Wrote KB directory {output} ({linker_kb.index.index_type} index, dim {enc.dim})")


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
) -> None:
    """Annotate a large corpus with a saved pipeline in a pool of Ray actors; the
    output equals what `link` writes, split into shards."""
    _start_ray(address, num_cpus)
    from ..distributed import annotate_ray

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
    )
