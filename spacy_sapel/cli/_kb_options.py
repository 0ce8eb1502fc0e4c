"""The options ``build-kb`` and ``build-kb-ray`` share, declared once, and the steps
they share: check the options and output, read the vocabulary (plus training mentions
as aliases) and the encoder, build and write the KB (the names embedded here or by Ray
actors)."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer
from wasabi import msg

from ..encoder import DEFAULT_ENCODER, SapEncoder
from ..encoder.runtimes import RUNTIMES
from ..index import INDEX_TYPES, DenseIndex
from ..kb import KnowledgeBase
from ..kb.readers import READERS, read_kb
from ..pipeline.linker_kb import KB_DIR_MARKER, Embedder, LinkerKB
from ..training.mentions import add_mention_aliases, add_mention_priors
from ..util import check_output_dir
from ._util import check_choice, check_distinct_paths, parse_options

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
SPARSE = typer.Option(False, "--sparse", help="Also index the names' character n-grams, for the linker's sparse_weight (hybrid search)")
NAME = typer.Option("kb", "--name", help="KB name stored in its metadata")
TRAIN_MENTIONS = typer.Option([], "--train-mentions", help="PubTator training corpus whose unambiguous gold mentions (one id, in the KB) become aliases of their concepts, and whose gold mentions are counted as the KB's priors; repeatable", exists=True, dir_okay=False)
PRIORS = typer.Option(True, "--priors/--no-priors", help="Count --train-mentions as priors (per mention string and concept), which break ties between concepts that match equally")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace OUTPUT even if it is not a KB directory (its whole content is deleted); a KB directory is always replaced")
TRAIN_MENTION_TYPES = typer.Option([], "--train-mention-type", help="Mention types to take from --train-mentions (e.g. Disease); repeatable")


def check_output(
    output: Path,
    inputs: Sequence[Path],
    train_mentions: Sequence[Path],
    encoder: str,
    *,
    overwrite: bool,
    needed_bytes: int = 0,
) -> None:
    """Refuse an output directory that must not be replaced (see
    :func:`~spacy_sapel.util.check_output_dir`): never the vocabulary, the training
    mentions or a local encoder directory, nor anything containing them; and a
    training corpus given twice."""
    check_distinct_paths("--train-mentions", train_mentions)
    sources = [*inputs, *train_mentions]
    if Path(encoder).exists():
        sources.append(Path(encoder))
    check_output_dir(
        output, KB_DIR_MARKER, overwrite=overwrite, inputs=sources, needed_bytes=needed_bytes
    )


def check_build(
    output: Path,
    inputs: Sequence[Path],
    train_mentions: Sequence[Path],
    encoder: str,
    *,
    index_type: str,
    index_option: List[str],
    runtime: Optional[str],
    overwrite: bool,
) -> Dict[str, Any]:
    """The checks before any work: the index type, runtime and index options, and
    the output path. Returns the index options."""
    check_choice("index type", index_type, INDEX_TYPES)
    if runtime is not None:
        check_choice("runtime", runtime, RUNTIMES)
    index_options = parse_options(index_option)
    DenseIndex.from_options(index_type, index_options)
    check_output(output, inputs, train_mentions, encoder, overwrite=overwrite)
    return index_options


def build(
    output: Path,
    inputs: Sequence[Path],
    train_mentions: Sequence[Path],
    kb: KnowledgeBase,
    enc: SapEncoder,
    *,
    encoder: str,
    index_type: str,
    index_options: Dict[str, Any],
    sparse: bool,
    overwrite: bool,
    embed: Optional[Embedder] = None,
) -> None:
    """Check what needs the KB and the encoder but not the vectors (the index
    options against the KB's size and the encoder's dimension, and roughly the free
    disk space), then build the KB with ``LinkerKB.build`` (names embedded by
    ``embed``, default the encoder here) and write it to ``output``."""
    index = LinkerKB.plan_index(kb, enc, index_type=index_type, index_options=index_options)
    needed = LinkerKB.estimate_bytes(kb, enc, index, sparse=sparse)
    check_output(output, inputs, train_mentions, encoder, overwrite=overwrite, needed_bytes=needed)
    linker_kb = LinkerKB.build(
        kb,
        enc,
        index_type=index_type,
        index_options=index_options,
        sparse=sparse,
        show_progress=embed is None,
        embed=embed,
    )
    linker_kb.to_disk(output, overwrite=overwrite)
    msg.good(f"Wrote KB directory {output} ({linker_kb.index.index_type} index, dim {enc.dim})")


def read_vocabulary(
    inputs: Sequence[Path],
    reader: str,
    reader_option: List[str],
    name: str,
    train_mentions: Sequence[Path],
    train_mention_types: Sequence[str],
    *,
    priors: bool = True,
) -> KnowledgeBase:
    kb = read_kb(list(inputs), reader, name=name, **parse_options(reader_option))
    types = list(train_mention_types) or None
    # each corpus's unambiguous strings, even one that another corpus links elsewhere
    # (both concepts then match it exactly and the priors choose; pooling the corpora
    # scored lower on held-out documents, README "Labelled development mentions ...")
    for corpus in train_mentions:
        added = add_mention_aliases(kb, corpus, types=types)
        msg.info(f"Added {added} mentions of {corpus} as aliases")
        if priors:
            counted, skipped = add_mention_priors(kb, corpus, types=types)
            msg.info(f"Counted {counted} mentions of {corpus} as priors")
            if skipped:
                details = ", ".join(f"{reason}: {n}" for reason, n in skipped.items())
                msg.warn(f"Mentions of {corpus} not counted ({details})")
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
