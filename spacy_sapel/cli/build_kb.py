from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..encoder import DEFAULT_ENCODER, SapEncoder
from ..encoder.pairs import add_mention_aliases
from ..index import INDEX_TYPES
from ..kb.readers import READERS, read_kb
from ..pipeline.linker_kb import LinkerKB
from ._app import app
from ._util import check_choice, parse_options


@app.command("build-kb")
def build_kb_cli(
    inputs: List[Path] = typer.Argument(..., help="Vocabulary file(s) to read", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write (encoder/, kb/, index/)"),
    reader: str = typer.Option("nemo_index", "--reader", "-r", help=f"KB reader: {', '.join(READERS)}, or a registered name"),
    reader_option: List[str] = typer.Option([], "--reader-option", help="Reader option as key=value (value parsed as JSON when possible); repeatable"),
    encoder: str = typer.Option(DEFAULT_ENCODER, "--encoder", "-e", help="Encoder directory or name (packaged all-MiniLM-L6-v2 by default; nothing is downloaded)"),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="cls or mean (default: what the encoder directory says, else cls)"),
    max_length: int = typer.Option(25, "--max-length", help="Maximum tokens per name"),
    batch_size: int = typer.Option(128, "--batch-size", help="Names per encoder batch"),
    index_type: str = typer.Option("flat", "--index-type", "-t", help=f"Index type: {', '.join(INDEX_TYPES)}"),
    index_option: List[str] = typer.Option([], "--index-option", help="Index option as key=value, e.g. nprobe=32, pca_dim=256; repeatable"),
    sparse: bool = typer.Option(False, "--sparse", help="Also index the names' character n-grams, for the linker's sparse_weight (hybrid search)"),
    name: str = typer.Option("kb", "--name", help="KB name stored in its metadata"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    train_mentions: List[Path] = typer.Option([], "--train-mentions", help="PubTator training corpus whose unambiguous gold mentions (one id, in the KB) become aliases of their concepts; repeatable", exists=True, dir_okay=False),
    train_mention_types: List[str] = typer.Option([], "--train-mention-type", help="Mention types to take from --train-mentions (e.g. Disease); repeatable"),
) -> None:
    """Read a vocabulary, embed every concept name with the encoder, index the
    embeddings and write a KB directory that the linker's `sapel.load_kb_dir.v1`
    loader reads."""
    check_choice("index type", index_type, INDEX_TYPES)
    kb = read_kb(inputs, reader, name=name, **parse_options(reader_option))
    for corpus in train_mentions:
        added = add_mention_aliases(kb, corpus, types=train_mention_types or None)
        msg.info(f"Added {added} mentions of {corpus} as aliases")
    n_names = len(kb.alias_table()[0])
    msg.info(f"Read {len(kb)} concepts with {n_names} distinct names")
    enc = SapEncoder.from_pretrained(
        encoder, pooling=pooling, max_length=max_length, batch_size=batch_size, device=device
    )
    linker_kb = LinkerKB.build(
        kb,
        enc,
        index_type=index_type,
        index_options=parse_options(index_option),
        sparse=sparse,
        show_progress=True,
    )
    linker_kb.to_disk(output)
    msg.good(f"Wrote KB directory {output} ({index_type} index, dim {enc.dim})")
