from pathlib import Path
from typing import List, Optional

import typer

from . import _kb_options as opts
from ._app import app


@app.command("build-kb")
def build_kb_cli(
    inputs: List[Path] = opts.INPUTS,
    output: Path = opts.OUTPUT,
    reader: str = opts.READER,
    reader_option: List[str] = opts.READER_OPTION,
    encoder: str = opts.ENCODER,
    pooling: Optional[str] = opts.POOLING,
    max_length: Optional[int] = opts.MAX_LENGTH,
    batch_size: int = opts.BATCH_SIZE,
    runtime: Optional[str] = opts.RUNTIME,
    index_type: str = typer.Option("flat", "--index-type", "-t", help=opts.INDEX_TYPE_HELP),
    index_option: List[str] = opts.INDEX_OPTION,
    sparse: bool = opts.SPARSE,
    name: str = opts.NAME,
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    train_mentions: List[Path] = opts.TRAIN_MENTIONS,
    train_mention_types: List[str] = opts.TRAIN_MENTION_TYPES,
    overwrite: bool = opts.OVERWRITE,
    priors: bool = opts.PRIORS,
) -> None:
    """Read a vocabulary, embed every concept name with the encoder, index the
    embeddings and write a KB directory that the linker's `sapel.load_kb_dir.v1`
    loader reads. Options, the output path and the free disk space are checked
    before any name is encoded."""
    index_options = opts.check_build(
        output, inputs, train_mentions, encoder, index_type=index_type,
        index_option=index_option, runtime=runtime, overwrite=overwrite,
    )
    kb = opts.read_vocabulary(
        inputs, reader, reader_option, name, train_mentions, train_mention_types, priors=priors
    )
    enc = opts.load_encoder(encoder, pooling, max_length, batch_size, device, runtime)
    opts.build(
        output, inputs, train_mentions, kb, enc, encoder=encoder, index_type=index_type,
        index_options=index_options, sparse=sparse, overwrite=overwrite,
    )
