"""Work beyond one process with Ray (optional extra: ``pip install 'spacy-sapel[ray]'``).

- :func:`ray_embedder` (over :func:`encode_names_ray`): the ``embed`` hook of
  ``LinkerKB.build`` that embeds the names of a KB over a Ray Data dataset in a pool of
  encoder actors (one encoder per actor, a GPU each when the cluster has GPUs); the
  build itself (index, sparse index) runs on the driver, as without Ray.
- :func:`annotate_ray`: run a saved pipeline over a large JSONL or text corpus in a
  pool of pipeline actors and write JSONL or DocBin shards, in input order.

Both give the results of the single-process code (``LinkerKB.build``, the ``link``
command). Ray is initialised by the caller (``ray.init`` or :func:`start_ray`); when it
is not, a local instance is started.
"""
from __future__ import annotations

import gc
import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import srsly

from ._compat import import_ray
from .encoder import SapEncoder
from .errors import Errors, InputFileError, InputNotFoundError, SapelError
from .pipeline.annotate import annotate
from .pipeline.describe import describe_entities
from .pipeline.linker_kb import Embedder
from .training.jsonl import doc_from_input_line, is_jsonl
from .util import DirMarker, PathLike, atomic_directory, check_int_option, check_output_dir

logger = logging.getLogger("spacy_sapel")
OUTPUT_FORMATS = ("jsonl", "docbin")


#: what ``annotate_ray`` may replace: a directory of its shards
SHARDS_MARKER = DirMarker("annotate-ray output directory", ("part-00000.jsonl", "part-00000.spacy"))


def start_ray(address: Optional[str] = None, *, num_cpus: Optional[int] = None) -> Any:
    """The ray module, initialised: connected to the cluster at ``address``, else a
    local instance (``num_cpus`` CPUs, default all) if none is running. An
    ImportError (E701) that says how to install Ray when it is absent."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            log_to_driver=False,
        )
    return ray


def _no_cpu(read: Any) -> Dict[str, Any]:
    """Keyword arguments that make a Ray Data read reserve no CPU (``num_cpus`` in
    newer Ray, ``ray_remote_args`` before)."""
    import inspect

    if "num_cpus" in inspect.signature(read).parameters:
        return {"num_cpus": 0}
    return {"ray_remote_args": {"num_cpus": 0}}


def _gpus_per_actor(ray: Any, requested: Optional[float]) -> float:
    """GPUs to reserve per actor: as requested, else one when the cluster has GPUs."""
    if requested is not None:
        return float(requested)
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


class _EncodeActor:
    """One encoder per actor: a batch of ``{"row", "name"}`` to ``{"row", "vector"}``."""

    def __init__(self, encoder_dir: str, device: str, batch_size: int) -> None:
        self.encoder = SapEncoder.from_disk(encoder_dir, device=device)
        self.batch_size = batch_size

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        names = [str(name) for name in batch["name"]]
        vectors = self.encoder.encode(names, batch_size=self.batch_size)
        return {"row": batch["row"], "vector": vectors}


def encode_names_ray(
    names: Sequence[str],
    encoder_dir: PathLike,
    *,
    num_actors: int = 2,
    batch_size: int = 128,
    rows_per_task: int = 4096,
    num_gpus: Optional[float] = None,
    device: str = "auto",
) -> np.ndarray:
    """Embed ``names`` with the encoder saved in ``encoder_dir`` (``SapEncoder.to_disk``)
    in ``num_actors`` actors; rows come back in input order."""
    for name, value in (("num_actors", num_actors), ("batch_size", batch_size),
                        ("rows_per_task", rows_per_task)):
        check_int_option(name, value)
    ray = start_ray()
    import pyarrow

    out: Optional[np.ndarray] = None
    if len(names) == 0:
        return np.zeros((0, SapEncoder.from_disk(encoder_dir, device="cpu").dim), np.float32)
    table = pyarrow.table({"row": np.arange(len(names), dtype=np.int64), "name": list(names)})
    # blocks cut on the driver (a repartition would need CPUs that the actors hold)
    n_blocks = max(1, min(num_actors * 4, -(-len(names) // rows_per_task)))
    size = -(-len(names) // n_blocks)
    blocks = [table.slice(start, size) for start in range(0, len(names), size)]
    dataset = ray.data.from_arrow(blocks).map_batches(
        _EncodeActor,
        fn_constructor_kwargs={
            "encoder_dir": str(encoder_dir),
            "device": device,
            "batch_size": batch_size,
        },
        batch_size=rows_per_task,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_gpus=_gpus_per_actor(ray, num_gpus),
    )
    for batch in dataset.iter_batches(batch_size=rows_per_task, batch_format="numpy"):
        vectors = np.asarray(batch["vector"], dtype=np.float32)
        if out is None:
            out = np.zeros((len(names), vectors.shape[1]), dtype=np.float32)
        out[batch["row"]] = vectors
    assert out is not None
    return out


def ray_embedder(
    encoder: SapEncoder,
    *,
    num_actors: int = 2,
    batch_size: Optional[int] = None,
    rows_per_task: int = 4096,
    num_gpus: Optional[float] = None,
    device: str = "auto",
    work_dir: Optional[PathLike] = None,
) -> Embedder:
    """The ``embed`` hook of ``LinkerKB.build`` that embeds the names with
    :func:`encode_names_ray`: ``LinkerKB.build(kb, encoder, embed=ray_embedder(encoder))``.
    The encoder is saved once per build under ``work_dir`` (default: a temporary
    folder) for the actors to load; on a multi-machine cluster that folder must be
    on a shared filesystem."""

    def embed(names: Sequence[str]) -> np.ndarray:
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            encoder_dir = Path(tmp) / "encoder"
            encoder.to_disk(encoder_dir)
            return encode_names_ray(
                names,
                encoder_dir,
                num_actors=num_actors,
                batch_size=batch_size or encoder.batch_size,
                rows_per_task=rows_per_task,
                num_gpus=num_gpus,
                device=device,
            )

    return embed


class _AnnotateActor:
    """One pipeline per actor: a batch of input lines to output records."""

    def __init__(self, pipeline: str, input_format: str, output_format: str,
                 batch_size: int, source: str, use_gpu: bool) -> None:
        import spacy

        if use_gpu:
            spacy.prefer_gpu()
        self.nlp = spacy.load(pipeline)
        self.input_format = input_format
        self.output_format = output_format
        self.batch_size = batch_size
        self.source = source

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        from spacy.tokens import DocBin

        lines = [str(line) for line in batch["text"] if str(line).strip()]
        stream = [self._doc(line) for line in lines]
        docs = list(annotate(self.nlp, stream, batch_size=self.batch_size))
        if self.output_format == "jsonl":
            records = [
                srsly.json_dumps({"text": doc.text, "ents": describe_entities(self.nlp, doc)})
                for doc in docs
            ]
            return {"out": np.array(records, dtype=object)}
        data = DocBin(store_user_data=True, docs=docs).to_bytes()
        return {"out": np.array([data], dtype=object)}

    def _doc(self, line: str) -> Tuple[Any, bool]:
        return doc_from_input_line(
            self.nlp, line, input_format=self.input_format, source=self.source
        )


def annotate_ray(
    pipeline: PathLike,
    input_path: PathLike,
    output_dir: PathLike,
    *,
    output_format: str = "jsonl",
    num_actors: int = 2,
    batch_size: int = 64,
    docs_per_task: int = 256,
    shard_size: int = 10_000,
    num_gpus: Optional[float] = None,
    overwrite: bool = False,
) -> Dict[str, int]:
    """Annotate ``input_path`` (JSONL records ``{"text", "ents"?}``, told by content,
    or text, one document per line) with the pipeline at ``pipeline`` in ``num_actors`` actors and
    write ``part-NNNNN.jsonl`` (``shard_size`` documents each, records as the ``link``
    command writes them) or ``part-NNNNN.spacy`` (a DocBin per task) into
    ``output_dir``, in input order. Returns the numbers of documents and shards. An
    existing ``output_dir`` is replaced only if it holds such shards (or nothing),
    unless ``overwrite``; it may never be or contain the pipeline or the input."""
    if output_format not in OUTPUT_FORMATS:
        raise SapelError(
            Errors.E402.format(what="output format", value=output_format,
                               options=", ".join(OUTPUT_FORMATS))
        )
    for name, value in (("num_actors", num_actors), ("batch_size", batch_size),
                        ("docs_per_task", docs_per_task), ("shard_size", shard_size)):
        check_int_option(name, value)
    input_path = Path(input_path)
    if not input_path.is_file():
        raise InputNotFoundError(Errors.E001.format(path=input_path))
    check_output_dir(output_dir, SHARDS_MARKER, overwrite=overwrite, inputs=[pipeline, input_path])
    ray = start_ray()
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    input_format = "jsonl" if is_jsonl(input_path) else "text"
    # reading lines is light: the read tasks reserve no CPU, else actors holding every
    # CPU of a small cluster would starve them
    dataset = ray.data.read_text(str(input_path), **_no_cpu(ray.data.read_text)).map_batches(
        _AnnotateActor,
        fn_constructor_kwargs={
            "pipeline": str(Path(pipeline).resolve()),
            "input_format": input_format,
            "output_format": output_format,
            "batch_size": batch_size,
            "source": str(input_path),
            "use_gpu": bool(num_gpus),
        },
        batch_size=docs_per_task,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_gpus=float(num_gpus or 0),
    )
    outputs = (
        out
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy")
        for out in batch["out"]
    )
    coded: Optional[InputFileError] = None
    try:
        with atomic_directory(output_dir, SHARDS_MARKER, overwrite=overwrite) as tmp:
            if output_format == "jsonl":
                counts = _write_jsonl_shards(outputs, Path(tmp), shard_size)
            else:
                counts = _write_docbin_shards(outputs, Path(tmp))
    except InputFileError:
        raise
    except Exception as err:
        coded = actor_input_error(err)
        if coded is None:
            raise
    if coded is not None:
        # Ray's iterator and the actor's error refer to the actor pool through
        # reference cycles, so its actors kept their CPUs until the garbage collector
        # ran, and the next run on this Ray waited for them: drop them now, and raise
        # outside the handler so that the error does not keep Ray's traceback alive
        del dataset, outputs
        gc.collect()
        raise coded
    logger.info("Annotated %d documents -> %s (%d shards)", counts["docs"], output_dir, counts["shards"])
    return counts


def actor_input_error(err: BaseException) -> Optional[InputFileError]:
    """The E002 error of a bad input line raised in an actor, as the driver's own.
    Ray Data hands the driver an actor's exception as text only (a
    ``UserCodeException``/``RayTaskError`` holding the actor's traceback), so the
    command line could not tell it from a crash and showed the whole traceback."""
    match = _ACTOR_INPUT_ERROR.search(str(err))
    return InputFileError(match.group(0)) if match else None


_ACTOR_INPUT_ERROR = re.compile(r"\[E002\] [^\n]*")


def _write_jsonl_shards(lines: Iterator[str], folder: Path, shard_size: int) -> Dict[str, int]:
    n_docs = n_shards = 0
    f = None
    try:
        for line in lines:
            if n_docs % shard_size == 0:
                if f is not None:
                    f.close()
                f = (folder / f"part-{n_shards:05d}.jsonl").open("w", encoding="utf8")
                n_shards += 1
            f.write(str(line) + "\n")
            n_docs += 1
    finally:
        if f is not None:
            f.close()
    return {"docs": n_docs, "shards": n_shards}


def _write_docbin_shards(blobs: Iterator[bytes], folder: Path) -> Dict[str, int]:
    from spacy.tokens import DocBin

    n_docs = n_shards = 0
    for data in blobs:
        n_docs += len(DocBin().from_bytes(bytes(data)))
        (folder / f"part-{n_shards:05d}.spacy").write_bytes(bytes(data))
        n_shards += 1
    return {"docs": n_docs, "shards": n_shards}


def read_jsonl_shards(output_dir: PathLike) -> List[dict]:
    """The records of ``part-*.jsonl`` shards, in order (for checks and tests)."""
    return [
        record
        for shard in sorted(Path(output_dir).glob("part-*.jsonl"))
        for record in srsly.read_jsonl(shard)
    ]
