from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..encoder.runtimes import RUNTIMES
from ..index import INDEX_TYPES, DenseIndex
from ..pipeline.linker_kb import LinkerKB
from . import _kb_options as opts
from ._app import app
from ._util import check_choice, parse_options


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
    sparse: bool = typer.Option(False, "--sparse", help="Also index the names' character n-grams, for the linker's sparse_weight (hybrid search)"),
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
    check_choice("index type", index_type, INDEX_TYPES)
    if runtime is not None:
        check_choice("runtime", runtime, RUNTIMES)
    index_options = parse_options(index_option)
    DenseIndex.from_options(index_type, index_options)
    opts.check_output(output, inputs, train_mentions, encoder, overwrite=overwrite)
    kb = opts.read_vocabulary(
        inputs, reader, reader_option, name, train_mentions, train_mention_types, priors=priors
    )
    enc = opts.load_encoder(encoder, pooling, max_length, batch_size, device, runtime)
    opts.plan_build(
        output, inputs, train_mentions, kb, enc, encoder=encoder, index_type=index_type,
        index_options=index_options, sparse=sparse, overwrite=overwrite,
    )
    linker_kb = LinkerKB.build(
        kb,
        enc,
        index_type=index_type,
        index_options=index_options,
        sparse=sparse,
        show_progress=True,
    )
    linker_kb.to_disk(output, overwrite=overwrite)
    msg.good(f"Wrote KB directory {output} ({index_type} index, dim {enc.dim})")
