"""Registered loaders named in ``[initialize.components.<linker>]``: they bring the
encoder, KB and index into the pipeline at ``nlp.initialize()``; afterwards all of it
is saved inside the pipeline directory."""

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from spacy.util import registry

from ..encoder import DEFAULT_ENCODER, SapEncoder
from ..kb.readers import read_kb
from .linker_kb import LinkerKB


@registry.misc("sapel.encoder.v1")
def create_encoder(
    name_or_path: str = DEFAULT_ENCODER,
    pooling: Optional[str] = None,
    max_length: Optional[int] = None,
    batch_size: int = 128,
    device: str = "auto",
    normalize: Optional[str] = None,
    runtime: Optional[str] = None,
    threads: int = 0,
) -> Callable[[], SapEncoder]:
    """``sapel.encoder.v1``: a local Hugging Face encoder directory, a SAP training
    output (``model-last``), a name found in the local cache, or the packaged
    all-MiniLM-L6-v2 (the default). Never downloads. ``pooling``, ``max_length``,
    ``normalize`` (none or lower_punct) and ``runtime`` (torch, torch-int8, onnx,
    onnx-int8: what runs the model, for KB building and linking) default to what the
    encoder directory saved (else: auto-detected pooling, 25 tokens, none, torch).
    ``threads``: intra-op threads (0: all cores, divided among ``n_process`` workers)."""

    def load() -> SapEncoder:
        return SapEncoder.from_pretrained(
            name_or_path,
            pooling=pooling,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            normalize=normalize,
            runtime=runtime,
            threads=threads,
        )

    return load


@registry.misc("sapel.load_kb_dir.v1")
def create_kb_dir_loader(
    path: Path, device: Optional[str] = None, runtime: Optional[str] = None
) -> Callable[[], LinkerKB]:
    """``sapel.load_kb_dir.v1``: a directory written by ``python -m spacy_sapel build-kb``.
    ``device``: where the encoder and index run (null: the device saved with the KB,
    ``auto`` for one saved without); ``runtime``: search with another encoder runtime
    than the one that embedded the KB (accepted only when the two agree on a few of
    its names)."""

    def load() -> LinkerKB:
        return LinkerKB.from_disk(path, device=device, runtime=runtime)

    return load


@registry.misc("sapel.build_kb.v1")
def create_kb_builder(
    paths: Union[Path, List[Path]],
    reader: str = "nemo_index",
    reader_options: Dict[str, Any] = {},
    encoder: Optional[Callable[[], SapEncoder]] = None,
    index_type: str = "flat",
    index_options: Dict[str, Any] = {},
    name: str = "kb",
) -> Callable[[], LinkerKB]:
    """``sapel.build_kb.v1``: read a vocabulary with a named reader, embed and index it
    at initialization (fine for small KBs; build large ones once with ``build-kb``)."""

    def load() -> LinkerKB:
        kb = read_kb(paths, reader, name=name, **reader_options)
        enc = encoder() if encoder is not None else SapEncoder.from_pretrained()
        return LinkerKB.build(
            kb, enc, index_type=index_type, index_options=dict(index_options)
        )

    return load
