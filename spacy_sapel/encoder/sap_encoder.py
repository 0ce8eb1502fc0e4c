"""SapEncoder: a BERT-family encoder plus pooling that turns entity names into
L2-normalised vectors, with a content fingerprint that ties an index to its encoder.

Model directories are Hugging Face checkpoints (``config.json``, weights, tokenizer
files); BERT ones are read with :mod:`.bert` and :mod:`.tokenizer`, not transformers;
other model types (RoBERTa, XLM-RoBERTa, DistilBERT, ...) through transformers'
``AutoModel`` (:mod:`.auto_model`), imported only then."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import tempfile
import unicodedata
import warnings
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import srsly
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import Errors, EncoderError, EncoderInputError, SapelError, Warnings
from ..util import DirMarker, atomic_directory, atomic_write_bytes, check_int_option
from .auto_model import AutoEncoderModel, load_auto, read_model_type
from .bert import BertEncoderModel, load_bert
from .default import DEFAULT_ENCODER, resolve_encoder_path
from .runtimes import (
    DEFAULT_RUNTIME,
    ONNX_FILES,
    RUNTIMES,
    EncoderRuntime,
    check_runtime,
    create_runtime,
    default_threads,
    runtime_fingerprint,
    sha256,
    split_fingerprint,
)
from .tokenizer import EncoderTokenizer

POOLING = ("cls", "mean")
# Text normalisation applied to every name and mention before tokenising (saved with
# the encoder, so KB names and mentions always get the same treatment): "lower_punct"
# is the BioSyn/SapBERT preprocessing, lowercase with punctuation turned into spaces.
NORMALIZE = ("none", "lower_punct")
CFG_FILE = "sapel_encoder.json"
#: what ``to_disk`` may replace: an encoder directory it wrote
ENCODER_MARKER = DirMarker("saved encoder directory", (CFG_FILE,))
_ST_POOLING_FILE = "1_Pooling/config.json"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
# Config entries that change on save/load or across library versions without
# changing what the model computes; left out of the fingerprint.
_VOLATILE_CONFIG = ("architectures", "torch_dtype", "transformers_version")
_CFG_TYPES: Dict[str, type] = {
    "pooling": str,
    "max_length": int,
    "batch_size": int,
    "name": str,
    "fingerprint": str,
}


def cuda_available() -> bool:
    """Whether torch sees a usable CUDA GPU (a function of its own so tests can stub it)."""
    return torch.cuda.is_available()


def select_device(device: str, fp16: Optional[bool]) -> Tuple[str, bool]:
    """Resolve ``device`` ("auto", "cpu", "cuda", "cuda:N") and whether to run in half
    precision: fp16 defaults to on for CUDA and is never used on the CPU."""
    if not isinstance(device, str) or _DEVICE.match(device) is None:
        raise SapelError(Errors.E215.format(value=device))
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    elif device.startswith("cuda") and not cuda_available():
        raise SapelError(Errors.E216.format(value=device))
    on_gpu = device.startswith("cuda")
    if fp16 is None:
        return device, on_gpu
    if fp16 and not on_gpu:
        warnings.warn(Warnings.W201.format(device=device), UserWarning, stacklevel=3)
    return device, bool(fp16) and on_gpu


def _check_texts(texts: Sequence[str]) -> List[str]:
    """The input as a list, refusing a bare str and non-str items by index."""
    if isinstance(texts, str):
        raise EncoderInputError(Errors.E218.format(text=texts[:40]))
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise EncoderInputError(Errors.E217.format(index=i, type=type(text).__name__))
    return texts


class SapEncoder:
    """Encodes entity names into L2-normalised float32 vectors (SapBERT recipe: CLS
    pooling; mean pooling for sentence-transformers models)."""

    def __init__(
        self,
        model: Union[BertEncoderModel, AutoEncoderModel],
        tokenizer: EncoderTokenizer,
        *,
        pooling: str = "cls",
        max_length: int = 25,
        batch_size: int = 128,
        device: str = "auto",
        fp16: Optional[bool] = None,
        name: str = "",
        normalize: str = "none",
        runtime: str = DEFAULT_RUNTIME,
        threads: int = 0,
        runtime_files: Optional[Dict[str, bytes]] = None,
    ) -> None:
        check_int_option("threads", threads, minimum=0)
        if pooling not in POOLING:
            raise SapelError(Errors.E212.format(value=pooling, options=POOLING))
        if normalize not in NORMALIZE:
            raise SapelError(Errors.E212.format(value=normalize, options=NORMALIZE))
        low = tokenizer.num_special_tokens + 1
        high = model.config.max_position_embeddings
        if tokenizer.model_max_length is not None:
            high = min(high, tokenizer.model_max_length)
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, int)
            or not low <= max_length <= high
        ):
            raise SapelError(Errors.E213.format(value=max_length, low=low, high=high))
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = check_int_option("batch_size", batch_size)
        self.name = name
        if runtime != "torch" and device == "auto":
            device = "cpu"  # the int8 and ONNX runtimes run on the CPU
        self.device, self.fp16 = select_device(device, fp16)
        runtime = check_runtime(runtime, self.device)
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        self._fingerprint: Optional[str] = None
        self.threads = threads
        self._runtime = self._create_runtime(runtime, runtime_files or {})
        # token ids -> vector, only inside :meth:`reusing_vectors`
        self._reused: Optional[Dict[Tuple[int, ...], np.ndarray]] = None

    def _create_runtime(self, runtime: str, files: Dict[str, bytes]) -> EncoderRuntime:
        return create_runtime(
            runtime,
            self.model,
            threads=self.threads or default_threads(),
            onnx_bytes=files.get(ONNX_FILES.get(runtime, "")),
        )

    @property
    def runtime(self) -> str:
        """What runs the forward pass at inference: torch, torch-int8, onnx, onnx-int8."""
        return self._runtime.name

    def with_runtime(self, runtime: str) -> "SapEncoder":
        """This encoder (same weights and tokenizer, shared) with another runtime."""
        other = copy.copy(self)
        other._runtime = other._create_runtime(check_runtime(runtime, self.device), {})
        other._reused = None
        return other

    @contextlib.contextmanager
    def reusing_vectors(self) -> Iterator[None]:
        """Within the block, :meth:`encode` embeds a token sequence once: a text whose
        token ids it has already embedded in the block gets the same vector again. The
        linker runs a batch of docs in one block, so a reranker that encodes the
        batch's mention strings for its features reuses the search's vectors. The
        vectors are dropped when the block ends (the weights may change after it, e.g.
        in training); a nested block uses the outer one's."""
        if self._reused is not None:
            yield
            return
        self._reused = {}
        try:
            yield
        finally:
            self._reused = None

    # --- loading ------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: Union[str, Path] = DEFAULT_ENCODER,
        *,
        pooling: Optional[str] = None,
        max_length: Optional[int] = None,
        batch_size: int = 128,
        device: str = "auto",
        fp16: Optional[bool] = None,
        normalize: Optional[str] = None,
        runtime: Optional[str] = None,
        threads: int = 0,
    ) -> "SapEncoder":
        """Load a local BERT-family model directory, the packaged all-MiniLM-L6-v2 or a
        name in the local Hugging Face cache. ``pooling``, ``max_length``,
        ``normalize`` and ``runtime`` left at None come from a saved SapEncoder
        directory, else pooling from the directory's sentence-transformers config,
        max_length 25, no normalisation and the torch runtime. ``threads``: intra-op
        threads of the runtime (0: :func:`.runtimes.default_threads`)."""
        source = resolve_encoder_path(name_or_path)
        if not isinstance(source, Path):
            source = _cached_snapshot(source)
        saved = _read_saved_cfg(source)
        if pooling is None:
            pooling = saved["pooling"] if saved else _detect_pooling(source)
        if max_length is None:
            max_length = saved["max_length"] if saved else 25
        if normalize is None:
            normalize = saved.get("normalize", "none") if saved else "none"
        saved_runtime = saved.get("runtime", DEFAULT_RUNTIME) if saved else DEFAULT_RUNTIME
        if runtime is None:
            runtime = saved_runtime
        model, tokenizer = _load_model(source)
        return cls(
            model,
            tokenizer,
            pooling=pooling,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            fp16=fp16,
            name=saved["name"] if saved else str(name_or_path),
            normalize=normalize,
            runtime=runtime,
            threads=threads,
            runtime_files=_read_runtime_files(source, saved) if runtime == saved_runtime else None,
        )

    # --- encoding -----------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: Optional[int] = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts`` as an ``[n, dim]`` float32 array of unit rows, in input order.

        Texts with the same token ids are encoded once, so they get bit-identical
        vectors: two concepts that share a name tie exactly (and the KB order decides)
        instead of by float noise from batch padding. The distinct ones are sorted by
        token length so that each batch pads to a similar width. Inside
        :meth:`reusing_vectors`, token ids embedded earlier in the block are not
        embedded again."""
        texts = _check_texts(texts)
        batch_size = self.batch_size if batch_size is None else check_int_option("batch_size", batch_size)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        slots: Dict[Tuple[int, ...], int] = {}
        rows_of = [slots.setdefault(tuple(seq), len(slots)) for seq in self._tokenize(texts)]
        ids = list(slots)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        reused = self._reused
        todo = []
        for i, seq in enumerate(ids):
            if reused is not None and seq in reused:
                out[i] = reused[seq]
            else:
                todo.append(i)
        order = sorted(todo, key=lambda i: -len(ids[i]))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), self._autocast(), tqdm(
                total=len(order), unit="name", desc="Encoding", disable=not show_progress
            ) as bar:
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    vectors = self._pool(self._collate([ids[i] for i in rows]), self._runtime)
                    out[rows] = vectors.cpu().numpy()
                    bar.update(len(rows))
        finally:
            self.model.train(was_training)
        if reused is not None:
            # rows of this call's own array (never handed out): kept without a copy
            reused.update((ids[i], out[i]) for i in order)
        return out[rows_of]

    def embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        """Differentiable pooled, normalised embeddings of one batch, for SAP training
        (the caller sets ``model.train()`` and any mixed precision)."""
        texts = _check_texts(texts)
        if not texts:
            return torch.zeros((0, self.dim), device=self.device)
        return self._pool(self._collate(self._tokenize(texts)), self.model)

    def _tokenize(self, texts: List[str]) -> List[List[int]]:
        if self.normalize != "none":
            texts = [normalize_text(text) for text in texts]
        return self.tokenizer.encode(texts, max_length=self.max_length)

    def _collate(self, ids: Sequence[Sequence[int]]) -> Dict[str, torch.Tensor]:
        """Right-pad one batch to its longest sequence."""
        width = max(len(seq) for seq in ids)
        input_ids = torch.full((len(ids), width), self.tokenizer.pad_token_id)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _pool(
        self, batch: Dict[str, torch.Tensor], forward: Callable[..., torch.Tensor]
    ) -> torch.Tensor:
        hidden = forward(batch["input_ids"], batch["attention_mask"])
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        # float32 before normalising; F.normalize divides by max(norm, eps): no NaN
        return F.normalize(pooled.float(), dim=-1)

    def _autocast(self) -> ContextManager:
        """Half precision through autocast, so the weights (and with them the
        fingerprint and saved files) stay float32."""
        if self.fp16:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    # --- identity -----------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def fingerprint(self) -> str:
        """The weights' fingerprint, with ``/<runtime>`` appended for any runtime but
        torch: equal fingerprints mean equal vectors for equal names."""
        return runtime_fingerprint(self.weights_fingerprint, self.runtime)

    @property
    def weights_fingerprint(self) -> str:
        """A short sha256 over pooling, max_length, the model config and the float32
        weights."""
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def reset_fingerprint(self) -> None:
        """Forget the cached fingerprint after the weights changed (training), and
        rebuild a runtime that holds its own copy of the weights."""
        self._fingerprint = None
        if self.runtime != "torch":
            self._runtime = self._create_runtime(self.runtime, {})

    def _compute_fingerprint(self) -> str:
        config = {
            key: value
            for key, value in self.model.config.values.items()
            if not key.startswith("_") and key not in _VOLATILE_CONFIG
        }
        head = {"pooling": self.pooling, "max_length": self.max_length, "config": config}
        if self.normalize != "none":  # absent when off: older fingerprints stay valid
            head["normalize"] = self.normalize
        digest = hashlib.sha256(json.dumps(head, sort_keys=True, default=str).encode("utf8"))
        for key, tensor in sorted(self.model.tensors().items()):
            tensor = tensor.detach().cpu()
            if tensor.is_floating_point():
                tensor = tensor.float()
            digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode("utf8"))
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def cfg(self) -> Dict[str, Any]:
        return {
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "name": self.name,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "runtime": self.runtime,
            "runtime_files": {name: sha256(data) for name, data in self._runtime.files().items()},
        }

    # --- serialization ------------------------------------------------------------
    def to_disk(self, path: Union[str, Path]) -> None:
        """Write weights (safetensors), tokenizer and ``sapel_encoder.json`` to the
        directory ``path``, atomically."""
        with atomic_directory(path, ENCODER_MARKER) as tmp:
            self.model.save(tmp)
            self.tokenizer.save(tmp)
            for file, data in self._runtime.files().items():
                atomic_write_bytes(tmp / file, data)
            (tmp / CFG_FILE).write_text(json.dumps(self.cfg, indent=2), encoding="utf8")

    @classmethod
    def from_disk(
        cls,
        path: Union[str, Path],
        *,
        device: str = "auto",
        fp16: Optional[bool] = None,
        runtime: Optional[str] = None,
        threads: int = 0,
    ) -> "SapEncoder":
        """Load a directory written by :meth:`to_disk`; the weights (and an ONNX file)
        must still match the saved fingerprint (and sha256). ``runtime``: the saved one
        when None."""
        path = Path(path)
        if not path.is_dir():
            raise EncoderError(Errors.E208.format(path=path, problem="no such directory"))
        saved = _read_saved_cfg(path)
        if saved is None:
            raise EncoderError(Errors.E208.format(path=path, problem=f"{CFG_FILE} is missing"))
        model, tokenizer = _load_model(path)
        encoder = cls(
            model,
            tokenizer,
            pooling=saved["pooling"],
            max_length=saved["max_length"],
            batch_size=saved["batch_size"],
            device=device,
            fp16=fp16,
            name=saved["name"],
            normalize=saved.get("normalize", "none"),
            runtime=runtime or saved.get("runtime", DEFAULT_RUNTIME),
            threads=threads,
            runtime_files=_read_runtime_files(path, saved)
            if runtime in (None, saved.get("runtime", DEFAULT_RUNTIME))
            else None,
        )
        saved_weights = split_fingerprint(saved["fingerprint"])[0]
        if encoder.weights_fingerprint != saved_weights:
            raise EncoderError(
                Errors.E210.format(
                    path=path, saved=saved_weights, actual=encoder.weights_fingerprint
                )
            )
        return encoder

    def to_bytes(self) -> bytes:
        """The :meth:`to_disk` directory as msgpack ``{file name: content}``."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "encoder"
            self.to_disk(folder)
            files = {
                str(f.relative_to(folder)): f.read_bytes()
                for f in sorted(folder.rglob("*"))
                if f.is_file()
            }
        return srsly.msgpack_dumps(files)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        device: str = "auto",
        fp16: Optional[bool] = None,
    ) -> "SapEncoder":
        """Load what :meth:`to_bytes` wrote (through a temporary directory)."""
        files = srsly.msgpack_loads(data)
        if not isinstance(files, dict):
            raise EncoderError(Errors.E221.format(problem="not a mapping of files"))
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                rel = Path(name)
                if rel.is_absolute() or ".." in rel.parts or not isinstance(content, bytes):
                    raise EncoderError(Errors.E221.format(problem=f"bad entry {name!r}"))
                target = Path(tmp) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            return cls.from_disk(tmp, device=device, fp16=fp16)


def normalize_text(text: str) -> str:
    """``lower_punct``: casefold, punctuation (Unicode category P*) to spaces,
    whitespace collapsed; a text of punctuation only is kept casefolded."""
    folded = text.casefold()
    spaced = "".join(" " if unicodedata.category(c).startswith("P") else c for c in folded)
    return " ".join(spaced.split()) or folded


def _read_saved_cfg(path: Path) -> Optional[Dict[str, Any]]:
    """``sapel_encoder.json`` of a directory, checked; None when there is none."""
    cfg_path = path / CFG_FILE
    if not cfg_path.is_file():
        return None
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EncoderError(Errors.E209.format(path=path, file=CFG_FILE, problem=err)) from err
    if not isinstance(cfg, dict):
        raise EncoderError(
            Errors.E209.format(path=path, file=CFG_FILE, problem="not a JSON object")
        )
    for key, kind in _CFG_TYPES.items():
        if not isinstance(cfg.get(key), kind) or isinstance(cfg.get(key), bool):
            problem = f"{key!r} is {cfg.get(key)!r}, expected a {kind.__name__}"
            raise EncoderError(Errors.E209.format(path=path, file=CFG_FILE, problem=problem))
    if cfg.get("normalize", "none") not in NORMALIZE:
        problem = f"'normalize' is {cfg.get('normalize')!r}, expected one of {NORMALIZE}"
        raise EncoderError(Errors.E209.format(path=path, file=CFG_FILE, problem=problem))
    if cfg.get("runtime", DEFAULT_RUNTIME) not in RUNTIMES:
        problem = f"'runtime' is {cfg.get('runtime')!r}, expected one of {RUNTIMES}"
        raise EncoderError(Errors.E209.format(path=path, file=CFG_FILE, problem=problem))
    return cfg


def _read_runtime_files(path: Path, saved: Optional[Dict[str, Any]]) -> Dict[str, bytes]:
    """The runtime files (ONNX) a saved encoder lists, each checked against its sha256."""
    files = {}
    listed = (saved or {}).get("runtime_files") or {}
    if not isinstance(listed, dict):
        problem = f"'runtime_files' is {listed!r}, expected an object of file name -> sha256"
        raise EncoderError(Errors.E209.format(path=path, file=CFG_FILE, problem=problem))
    for file, digest in listed.items():
        target = path / str(file)
        data = target.read_bytes() if target.is_file() else b""
        if Path(str(file)).name != file or sha256(data) != digest:
            raise EncoderError(
                Errors.E233.format(path=path, file=file, actual=sha256(data), saved=digest)
            )
        files[file] = data
    return files


def _detect_pooling(source: Path) -> str:
    """Mean pooling when a sentence-transformers pooling config asks for it, else CLS."""
    st_config = source / _ST_POOLING_FILE
    if not st_config.is_file():
        return "cls"
    try:
        modes = json.loads(st_config.read_text(encoding="utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EncoderError(
            Errors.E205.format(what="pooling config", path=st_config, error=err)
        ) from err
    if modes.get("pooling_mode_cls_token"):
        return "cls"
    if modes.get("pooling_mode_mean_tokens") or modes.get("pooling_mode_mean_sqrt_len_tokens"):
        # mean / sqrt(len) is a positive multiple of the mean: same unit vector
        return "mean"
    active = [key for key, value in modes.items() if key.startswith("pooling_mode") and value]
    raise EncoderError(Errors.E219.format(path=st_config, mode=active, options=POOLING))


def _cached_snapshot(name: str) -> Path:
    """The local Hugging Face cache folder of the hub model ``name``; never downloads."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as err:
        raise EncoderError(Errors.E206.format(name=name)) from err


def _load_model(source: Path) -> Tuple[Union[BertEncoderModel, AutoEncoderModel], EncoderTokenizer]:
    """Tokenizer and float32 model of a local directory: the plain-torch BERT for
    model_type "bert", transformers' AutoModel for any other; the readers raise errors
    that name the directory and what it lacks (tokenizer files E220, weights E204)."""
    if not (source / "config.json").is_file():
        raise EncoderError(Errors.E203.format(path=source))
    tokenizer = EncoderTokenizer.from_dir(source)
    if read_model_type(source) in (None, "bert"):
        return load_bert(source), tokenizer
    return load_auto(source), tokenizer
