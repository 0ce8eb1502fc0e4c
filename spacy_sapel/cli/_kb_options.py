"""The options ``build-kb`` and ``build-kb-ray`` share, declared once, and the step
they share: read the vocabulary (plus training mentions as aliases) and the encoder."""
from pathlib import Path
from typing import List, Optional, Sequence

import typer
from wasabi import msg

from ..encoder import DEFAULT_ENCODER, SapEncoder
from ..encoder.pairs import add_mention_aliases
from ..index import INDEX_TYPES
from ..kb import KnowledgeBase
from ..kb.readers import READERS, read_kb
from ._util import parse_options

INPUTS = typer.Argument(..., help="Vocabulary file(s) to read", exists=True, dir_okay=False)
OUTPUT = typer.Option(..., "--output", "-o", help="Directory to write (encoder/, kb/, index/)")
READER = typer.Option("nemo_index", "--reader", "-r", help=f"KB reader: {', '.join(READERS)}, or a registered name")
READER_OPTION = typer.Option([], "--reader-option", help="Reader option as key=value (value parsed as JSON when possible); repeatable")
ENCODER = typer.Option(DEFAULT_ENCODER, "--encoder", "-e", help="Encoder directory or name (packaged all-MiniLM-L6-v2 by default; nothing is downloaded)")
POOLING = typer.Option(None, "--pooling", help="cls or mean (default: what the encoder directory says)")
MAX_LENGTH = typer.Option(None, "--max-length", help="Maximum tokens per name (default: the encoder's saved value, else 25)")
RUNTIME = typer.Option(None, "--runtime", help="Encoder runtime: torch, torch-int8, onnx or onnx-int8 (the ONNX ones need the [onnx] extra); saved with the KB. Default: the encoder directory's, else torch")
BATCH_SIZE = typer.Option(128, "--batch-size", help="Names per encoder batch")
INDEX_TYPE_HELP = f"Index type: {', '.join(INDEX_TYPES)}"
INDEX_OPTION = typer.Option([], "--index-option", help="Index option as key=value, e.g. nprobe=32, pca_dim=256, storage=sq8; repeatable")
NAME = typer.Option("kb", "--name", help="KB name stored in its metadata")
TRAIN_MENTIONS = typer.Option([], "--train-mentions", help="PubTator training corpus whose unambiguous gold mentions (one id, in the KB) become aliases of their concepts; repeatable", exists=True, dir_okay=False)
TRAIN_MENTION_TYPES = typer.Option([], "--train-mention-type", help="Mention types to take from --train-mentions (e.g. Disease); repeatable")


def read_vocabulary(
    inputs: Sequence[Path],
    reader: str,
    reader_option: List[str],
    name: str,
    train_mentions: Sequence[Path],
    train_mention_types: Sequence[str],
) -> KnowledgeBase:
    kb = read_kb(list(inputs), reader, name=name, **parse_options(reader_option))
    for corpus in train_mentions:
        added = add_mention_aliases(kb, corpus, types=list(train_mention_types) or None)
        msg.info(f"Added {added} mentions of {corpus} as aliases")
    msg.info(f"Read {len(kb)} concepts with {kb.n_names} distinct names")
    return kb


def load_encoder(
    encoder: str,
    pooling: Optional[str],
    max_length: Optional[int],
    batch_size: int,
    device: str,
    runtime: Optional[str] = None,
) -> SapEncoder:
    return SapEncoder.from_pretrained(
        encoder,
        pooling=pooling,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        runtime=runtime,
    )
