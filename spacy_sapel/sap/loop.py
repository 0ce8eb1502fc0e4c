"""The training loop that SAP (:mod:`.trainer`) and retrieval-aware fine-tuning
(:mod:`.retrieval`) share: seeded AdamW with linear warm-up and decay, gradient
accumulation, mixed precision on a GPU, a step or time budget, atomic checkpoints
that an interrupted run resumes from exactly, and the final model. A trainer
subclasses :class:`StepTrainer` and supplies what is its own: the loss of a batch,
the order an epoch visits the examples in, and what its checkpoint holds besides.

Output directory layout (like ``spacy train``'s ``model-last``)::

    output/model-last/    the trained encoder (SapEncoder.from_disk / from_pretrained)
    output/checkpoint/    encoder/ + state.pt (optimizer, scheduler, RNG, position)
    output/training.json  the settings, data digest and a log of losses and validation
    output/config.cfg     the filled config of a run from a config (:mod:`.config`)
"""
from __future__ import annotations

import logging
import math
import random
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import torch
from tqdm import tqdm

from ..encoder.sap_encoder import ENCODER_MARKER, SapEncoder
from ..errors import Errors, SapelError, Warnings
from ..util import DirMarker, atomic_directory, check_output_dir, read_json, write_json

logger = logging.getLogger("spacy_sapel")
MODEL_DIR = "model-last"
CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "training.json"
STATE_FILE = "state.pt"
STATE_JSON = "state.json"
CHECKPOINT_MARKER = DirMarker("SAP checkpoint directory", (STATE_JSON, STATE_FILE))

Result = TypeVar("Result")
History = List[Dict[str, Any]]


def linear_warmup_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 to the base learning rate, then linear decay to 0 at
    ``total_steps`` (BERT fine-tuning's and SapBERT's schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state() -> Dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def param_groups(model: torch.nn.Module, weight_decay: float, freeze_embeddings: bool) -> List[Dict[str, Any]]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (as BERT)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        # "embeddings." of the plain BERT, "model.embeddings." of an AutoModel encoder
        if freeze_embeddings and "embeddings" in name.split(".")[:2]:
            param.requires_grad_(False)
            continue
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: torch.nn.Module, cfg: Any, total_steps: int) -> Tuple[Any, Any]:
    """AdamW over :func:`param_groups` and the linear warm-up schedule, from a
    training config's ``lr``, ``weight_decay``, ``freeze_embeddings`` and
    ``warmup_ratio`` (SAP's and the retrieval objective's alike)."""
    optimizer = torch.optim.AdamW(
        param_groups(model, cfg.weight_decay, cfg.freeze_embeddings), lr=cfg.lr
    )
    scheduler = linear_warmup_schedule(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler


def check_sap_output(output_dir: Union[str, Path], *, inputs: Sequence[Union[str, Path]] = ()) -> None:
    """Refuse, before any work, a ``model-last/`` or ``checkpoint/`` under
    ``output_dir`` that is not a SAP output (and so may not be replaced) or that is one
    of ``inputs`` (such as the base encoder of a fine-tuning run)."""
    output_dir = Path(output_dir)
    check_output_dir(output_dir / MODEL_DIR, ENCODER_MARKER, inputs=inputs)
    check_output_dir(output_dir / CHECKPOINT_DIR, CHECKPOINT_MARKER, inputs=inputs)


class StepTrainer(Generic[Result]):
    """Trains ``encoder`` in place, one optimizer step at a time, and writes
    checkpoints and the final model under ``output_dir``. ``config`` holds the loop's
    settings (``lr``, ``weight_decay``, ``batch_size``, ``grad_accum``, ``epochs``,
    ``max_steps``, ``warmup_ratio``, ``freeze_embeddings``, ``seed``,
    ``checkpoint_every``, ``max_seconds`` and the ``resume_free`` names) besides the
    subclass's own. A subclass calls :meth:`_plan` once it knows its examples."""

    #: the ``objective`` recorded in the checkpoint; SAP's checkpoints predate the
    #: key, so a checkpoint without it is SAP's and SAP writes none
    objective: ClassVar[str] = "sap"
    #: the files a checkpoint directory must hold to be resumed from
    checkpoint_files: ClassVar[Tuple[str, ...]] = (STATE_JSON, STATE_FILE)
    #: whether an fp16 (CUDA) encoder trains under autocast with a gradient scaler
    mixed_precision: ClassVar[bool] = False
    #: the progress bar's label and the name of its examples-per-second figure
    progress_desc: ClassVar[str] = "Training"
    progress_rate: ClassVar[str] = "examples_s"

    def __init__(
        self, encoder: SapEncoder, output_dir: Union[str, Path], config: Any, recipe: Optional[Dict[str, Any]]
    ) -> None:
        config.check()
        self.config = config
        self.encoder = encoder
        self.output_dir = Path(output_dir)
        # refuse outputs that may not be replaced now, not after hours of training
        check_sap_output(self.output_dir)
        self.recipe = recipe or {}

    def _plan(self, n_examples: int, data_digest: str) -> None:
        """Fix the number of steps for ``n_examples`` examples and what a checkpoint
        must match to be resumed: the base encoder, the data and the settings."""
        cfg = self.config
        self.n_batches = math.ceil(n_examples / cfg.batch_size)
        self.steps_per_epoch = math.ceil(self.n_batches / cfg.grad_accum)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.base_fingerprint = self.encoder.fingerprint
        self.base_name = self.encoder.name
        self.data_digest = data_digest

    @property
    def use_amp(self) -> bool:
        return self.mixed_precision and bool(self.encoder.fp16)

    # --- what a trainer supplies --------------------------------------------------
    def epoch_order(self, epoch: int) -> np.ndarray:
        """The example indices in the order epoch ``epoch`` visits them (seeded)."""
        raise NotImplementedError

    def batch_loss(self, rows: np.ndarray) -> Optional[torch.Tensor]:
        """The loss of the examples ``rows``, or None when they teach nothing."""
        raise NotImplementedError

    def _before_step(self, step: int) -> None:
        """Work due before optimizer step ``step`` (such as refreshing candidates)."""

    def _validate(self, history: History, step: int) -> None:
        """Append the held-out figures after ``step`` steps to ``history``, if any."""

    def _data_sizes(self) -> Dict[str, int]:
        """How many examples of each kind the data digest covers (for messages)."""
        raise NotImplementedError

    def _other_data(self, saved: Dict[str, Any], mine: Dict[str, Any]) -> str:
        """Why a checkpoint with ``saved`` identity was trained on other data."""
        raise NotImplementedError

    def _checkpoint_state(self, path: Path) -> Dict[str, Any]:
        """The trainer's own state for ``state.pt``; files of its own go to ``path``."""
        return {}

    def _restore(self, state: Dict[str, Any], path: Path) -> None:
        """Take back what :meth:`_checkpoint_state` saved in the checkpoint ``path``."""

    def _result(self, common: Dict[str, Any], rate: float, history: History) -> Result:
        """The run's result from the ``common`` fields (``model_dir``, ``steps``,
        ``total_steps``, ``seconds``, ``final_loss``) and examples per second."""
        raise NotImplementedError

    def _log_extras(self) -> Dict[str, Any]:
        """Entries of ``training.json`` of the trainer's own."""
        return {}

    # --- the loop -----------------------------------------------------------------
    def train(self, *, resume: bool = False, show_progress: bool = True) -> Result:
        cfg = self.config
        model = self.encoder.model
        seed_everything(cfg.seed)
        optimizer, scheduler = make_optimizer(model, cfg, self.total_steps)
        scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        step, history = 0, []
        if resume:
            step, history = self._load_checkpoint(optimizer, scheduler, scaler)
            logger.info("Resumed from %s at step %d", self.output_dir / CHECKPOINT_DIR, step)
        else:
            self._validate(history, step)
        model.train()
        start = time.perf_counter()
        examples = 0
        loss_avg = _loss_ema(history)  # a resumed run goes on from the losses it had
        stopped_early = False
        bar = tqdm(
            total=self.total_steps, initial=step, desc=self.progress_desc, unit="step", disable=not show_progress
        )
        try:
            while step < self.total_steps:
                self._before_step(step)
                step_loss, learned = self._step(step, optimizer, scaler)
                examples += learned
                scheduler.step()
                step += 1
                history.append({"step": step, "loss": step_loss})
                loss_avg = _ema_update(loss_avg, step_loss)
                elapsed = time.perf_counter() - start
                bar.update(1)
                rate = f"{examples / max(elapsed, 1e-9):.1f}"
                bar.set_postfix(loss=f"{loss_avg:.4f}", **{self.progress_rate: rate})
                if cfg.max_seconds and elapsed >= cfg.max_seconds and step < self.total_steps:
                    stopped_early = True
                    break
                if step % cfg.checkpoint_every == 0 and step < self.total_steps:
                    self._validate(history, step)
                    self._save_checkpoint(step, optimizer, scheduler, scaler, history)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        self._validate(history, step)
        self._save_checkpoint(step, optimizer, scheduler, scaler, history)
        model.eval()
        self.encoder.reset_fingerprint()
        self.encoder.to_disk(self.output_dir / MODEL_DIR)
        if stopped_early:
            warnings.warn(Warnings.W602.format(seconds=seconds, step=step, total=self.total_steps))
        common = {
            "model_dir": self.output_dir / MODEL_DIR,
            "steps": step,
            "total_steps": self.total_steps,
            "seconds": seconds,
            "final_loss": loss_avg,
        }
        result = self._result(common, examples / max(seconds, 1e-9), history)
        self._write_log(result, history)
        return result

    def _step(self, step: int, optimizer: Any, scaler: Optional[Any]) -> Tuple[float, int]:
        """Accumulate the gradients of step ``step``'s batches and update the weights
        unless no batch had a loss; the step's loss and the examples it learned from."""
        cfg = self.config
        epoch, group = divmod(step, self.steps_per_epoch)
        order = self.epoch_order(epoch)
        first = group * cfg.grad_accum
        batches = range(first, min(first + cfg.grad_accum, self.n_batches))
        optimizer.zero_grad(set_to_none=True)
        step_loss, learned = 0.0, 0
        for b in batches:
            rows = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            loss = self.batch_loss(rows)
            if loss is None:
                continue
            loss = loss / len(batches)
            (scaler.scale(loss) if scaler else loss).backward()
            step_loss += float(loss.detach())
            learned += len(rows)
        if learned and scaler:
            scaler.step(optimizer)
            scaler.update()
        elif learned:
            optimizer.step()
        return step_loss, learned

    # --- checkpoints --------------------------------------------------------------
    def _identity(self) -> Dict[str, Any]:
        cfg = self.config
        settings = {k: v for k, v in asdict(cfg).items() if k not in cfg.resume_free}
        return {
            **({} if self.objective == "sap" else {"objective": self.objective}),
            "base_fingerprint": self.base_fingerprint,
            "base_name": self.base_name,
            "data_digest": self.data_digest,
            **self._data_sizes(),
            "settings": settings,
        }

    def _save_checkpoint(self, step: int, optimizer: Any, scheduler: Any, scaler: Any, history: History) -> None:
        self.encoder.reset_fingerprint()
        with atomic_directory(self.output_dir / CHECKPOINT_DIR, CHECKPOINT_MARKER) as tmp:
            self.encoder.to_disk(tmp / "encoder")
            state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            if self.mixed_precision:
                state["scaler"] = scaler.state_dict() if scaler else None
            state.update(rng=rng_state(), history=history, **self._checkpoint_state(tmp))
            torch.save(state, tmp / STATE_FILE)
            write_json(tmp / STATE_JSON, {"step": step, **self._identity()})

    def _mismatch(self, saved: Dict[str, Any]) -> Optional[str]:
        """Why the checkpoint with identity ``saved`` cannot be resumed by this run."""
        mine = self._identity()
        if saved.get("objective", "sap") != self.objective:
            return f"it is a checkpoint of the {saved.get('objective', 'sap')!r} objective"
        if saved.get("base_fingerprint") != mine["base_fingerprint"]:
            return (
                f"it was trained from base encoder {saved.get('base_name')!r} (fingerprint "
                f"{saved.get('base_fingerprint')}), not {mine['base_name']!r} ({mine['base_fingerprint']})"
            )
        if saved.get("data_digest") != mine["data_digest"]:
            return self._other_data(saved, mine)
        changed = [
            f"{key} {saved['settings'].get(key)!r} -> {value!r}"
            for key, value in mine["settings"].items()
            if saved.get("settings", {}).get(key) != value
        ]
        return "the settings changed: " + ", ".join(changed) if changed else None

    def _load_checkpoint(self, optimizer: Any, scheduler: Any, scaler: Any) -> Tuple[int, History]:
        path = self.output_dir / CHECKPOINT_DIR
        if not all((path / name).is_file() for name in self.checkpoint_files):
            raise SapelError(Errors.E606.format(path=path))
        problem = self._mismatch(read_json(path / STATE_JSON))
        if problem:
            raise SapelError(Errors.E605.format(path=path, problem=problem))
        trained = SapEncoder.from_disk(path / "encoder", device=self.encoder.device)
        self.encoder.model.load_state_dict(trained.model.state_dict())
        self.encoder.reset_fingerprint()
        state = torch.load(path / STATE_FILE, map_location=self.encoder.device, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self._restore(state, path)
        return state["step"], state["history"]

    def _write_log(self, result: Result, history: History) -> None:
        log = {
            **self._identity(),
            "recipe": self.recipe,
            "config": asdict(self.config),
            **self._log_extras(),
            "result": {**asdict(result), "model_dir": str(result.model_dir)},
            "history": history,
        }
        write_json(self.output_dir / LOG_FILE, log)


def _ema_update(average: float, loss: float) -> float:
    """The running loss shown and reported as ``final_loss``: an exponential moving
    average (0.9) that starts at the first step's loss."""
    return loss if math.isnan(average) else 0.9 * average + 0.1 * loss


def _loss_ema(history: History) -> float:
    """:func:`_ema_update` over every step's loss in ``history`` (NaN without any), so
    that a resumed run reports the ``final_loss`` of the uninterrupted run."""
    average = float("nan")
    for entry in history:
        if "loss" in entry:
            average = _ema_update(average, float(entry["loss"]))
    return average
