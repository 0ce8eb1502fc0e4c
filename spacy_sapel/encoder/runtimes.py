"""Encoder runtimes: what runs the BERT forward pass when names and mentions are
embedded. The float32 torch model stays the encoder's identity (weights, fingerprint,
training); a runtime is a faster stand-in for inference on a CPU.

- ``torch``: the plain-torch BERT of :mod:`.bert` (any device).
- ``torch-int8``: the same model with every ``nn.Linear`` dynamically quantized to
  int8, weights per output channel (``torch.ao.quantization.quantize_dynamic``; CPU).
- ``onnx`` / ``onnx-int8``: the model exported with ``torch.onnx.export`` and run by
  ONNX Runtime, float32 or with its MatMul weights dynamically quantized to int8 per
  channel (``onnxruntime.quantization.quantize_dynamic``; optional extra ``[onnx]``;
  CPU only).

Per-channel weights matter: per-tensor int8 puts all-MiniLM-L6-v2's name vectors at a
mean cosine of 0.935 (torch) / 0.955 (ONNX Runtime) from float32 on 800 MEDIC names,
per-channel at 0.972 / 0.992.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import multiprocessing
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .._compat import import_onnxruntime
from ..errors import Errors, EncoderError, SapelError
from ..util import atomic_write_bytes
from .bert import BertEncoderModel

RUNTIMES = ("torch", "torch-int8", "onnx", "onnx-int8")
DEFAULT_RUNTIME = "torch"
#: The ONNX file each ONNX runtime saves inside the encoder directory.
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
#: A KB embedded by one runtime may be searched with vectors of another runtime of the
#: same weights only when the two runtimes' vectors of the probe names have a mean
#: cosine of at least this. Measured for all-MiniLM-L6-v2 against float32 torch (800
#: MEDIC names): onnx 1.0000, onnx-int8 0.992, torch-int8 0.972.
MIN_PROBE_COSINE = 0.96
#: How many KB names the load-time check embeds with both runtimes.
N_PROBES = 16
_OPSET = 17
_SEPARATOR = "/"


def check_runtime(runtime: object, device: str) -> str:
    """``runtime`` if it is a known runtime that can run on ``device``."""
    if runtime not in RUNTIMES:
        raise SapelError(Errors.E230.format(value=runtime, options=RUNTIMES))
    if runtime != "torch" and device != "cpu":
        raise SapelError(Errors.E231.format(runtime=runtime, device=device))
    return str(runtime)


def runtime_fingerprint(weights_fingerprint: str, runtime: str) -> str:
    """The fingerprint of the vectors a runtime makes: the weights' fingerprint, with
    ``/<runtime>`` appended for every runtime but plain torch (so a torch KB keeps the
    fingerprint it always had)."""
    if runtime == "torch":
        return weights_fingerprint
    return f"{weights_fingerprint}{_SEPARATOR}{runtime}"


def split_fingerprint(fingerprint: str) -> Tuple[str, str]:
    """``(weights fingerprint, runtime)`` of a :func:`runtime_fingerprint`."""
    weights, _, runtime = fingerprint.partition(_SEPARATOR)
    return weights, runtime or "torch"


def default_threads() -> int:
    """Intra-op threads for an encoder that was not given a number.

    In the main process: 0, which leaves torch's and ONNX Runtime's own default (one
    thread per physical core). In a worker process (``nlp.pipe(n_process=N)`` starts N
    of them, each with a copy of the pipeline), the usable cores divided by the number
    of sibling workers, so N workers do not each start a thread per core."""
    if multiprocessing.parent_process() is None:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // _count_siblings())


def _count_siblings() -> int:
    """Processes with this process's parent and command line (spaCy's workers are
    forks of one parent); 1 when /proc cannot tell (not Linux)."""
    parent = os.getppid()
    try:
        mine = Path("/proc/self/cmdline").read_bytes()
        count = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == parent and (entry / "cmdline").read_bytes() == mine:
                    count += 1
            except (OSError, ValueError, IndexError):
                continue
        return max(count, 1)
    except OSError:
        return 1


class EncoderRuntime:
    """Runs the forward pass of one encoder: token ids and mask in, hidden states out."""

    name = "torch"

    def __init__(self, model: BertEncoderModel, *, threads: int = 0) -> None:
        self.model = model
        self.threads = threads

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.threads:
            torch.set_num_threads(self.threads)
        return self.model(input_ids, attention_mask)

    def files(self) -> Dict[str, bytes]:
        """Files to save inside the encoder directory (name -> content)."""
        return {}


class TorchInt8Runtime(EncoderRuntime):
    name = "torch-int8"

    def __init__(self, model: BertEncoderModel, *, threads: int = 0) -> None:
        with warnings.catch_warnings():
            # torch deprecates its quantized tensors (in favour of torchao) but still
            # ships and runs them; this runtime goes when they do
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(model).cpu().eval(),
                {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                dtype=torch.qint8,
            )
        super().__init__(quantized, threads=threads)


class OnnxRuntime(EncoderRuntime):
    """An ONNX Runtime session over the exported model (``int8``: quantized)."""

    def __init__(
        self,
        model: BertEncoderModel,
        *,
        int8: bool,
        threads: int = 0,
        onnx_bytes: Optional[bytes] = None,
    ) -> None:
        super().__init__(model, threads=threads)
        self.name = "onnx-int8" if int8 else "onnx"
        ort = import_onnxruntime()
        if onnx_bytes is None:
            onnx_bytes = export_onnx_bytes(model, int8=int8)
        self.onnx_bytes = onnx_bytes
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # ORT raises its own exception types on bad models
            raise EncoderError(Errors.E232.format(file=ONNX_FILES[self.name], error=err)) from err

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (hidden,) = self.session.run(
            ["hidden"],
            {
                "input_ids": input_ids.cpu().numpy().astype(np.int64),
                "attention_mask": attention_mask.cpu().numpy().astype(np.int64),
            },
        )
        return torch.from_numpy(hidden)

    def files(self) -> Dict[str, bytes]:
        return {ONNX_FILES[self.name]: self.onnx_bytes}


def create_runtime(
    name: str,
    model: BertEncoderModel,
    *,
    threads: int = 0,
    onnx_bytes: Optional[bytes] = None,
) -> EncoderRuntime:
    """The runtime ``name`` over ``model``; ONNX runtimes use ``onnx_bytes`` (a saved
    file) when given, else export the model now."""
    if name == "torch":
        return EncoderRuntime(model, threads=threads)
    if name == "torch-int8":
        return TorchInt8Runtime(model, threads=threads)
    if name in ONNX_FILES:
        return OnnxRuntime(model, int8=name == "onnx-int8", threads=threads, onnx_bytes=onnx_bytes)
    raise SapelError(Errors.E230.format(value=name, options=RUNTIMES))


def export_onnx(model: BertEncoderModel, path: Path, *, int8: bool = False) -> None:
    """Write ``model`` as an ONNX graph (inputs ``input_ids`` and ``attention_mask``,
    output ``hidden``; batch and sequence axes dynamic) to ``path``, atomically;
    ``int8``: with its MatMul weights dynamically quantized."""
    atomic_write_bytes(path, export_onnx_bytes(model, int8=int8))


def export_onnx_bytes(model: BertEncoderModel, *, int8: bool = False) -> bytes:
    """The ONNX file :func:`export_onnx` writes, as bytes."""
    import_onnxruntime()  # a clear error before any work when the extra is missing
    model = copy.deepcopy(model).cpu().eval()
    ids = torch.ones((2, 5), dtype=torch.long)
    mask = torch.ones((2, 5), dtype=torch.long)
    dynamic = {0: "batch", 1: "sequence"}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            # the TorchScript exporter is deprecated in favour of dynamo=True, which
            # needs onnxscript; both write the same opset-17 graph for this model
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (ids, mask),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["hidden"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "hidden": dynamic},
                opset_version=_OPSET,
                dynamo=False,
            )
        if not int8:
            return fp32.read_bytes()
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = Path(tmp) / "model.int8.onnx"
        # quantize_dynamic logs advice on the root logger at every call
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(
                str(fp32), str(quantized), weight_type=QuantType.QInt8, per_channel=True
            )
        finally:
            logging.disable(logging.NOTSET)
        return quantized.read_bytes()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
