"""The SAP training loop (SapBERT): multi-similarity loss with online hard-triplet
mining inside each batch of synonym pairs, AdamW with linear warm-up and decay,
gradient accumulation, mixed precision on a GPU, atomic checkpoints and exact resume.

Output directory layout (like ``spacy train``'s ``model-last``)::

    output/model-last/    the trained encoder (SapEncoder.from_disk / from_pretrained)
    output/checkpoint/    encoder/ + state.pt (optimizer, scheduler, RNG, position)
    output/training.json  the settings, data digest and a log of losses and validation
    output/config.cfg     the filled config of a run from a config (:mod:`.config`)
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from ..encoder.sap_encoder import ENCODER_MARKER, SapEncoder
from ..errors import Errors, SapelError, Warnings
from ..util import DirMarker, atomic_directory, check_int_option, check_output_dir, read_json, write_json
from .batching import BATCHING, hard_order, label_neighbors
from .loss import TRIPLET_TYPES, mine_triplets, multi_similarity_loss
from .pairs import PairSet, SynonymPair, texts_of

logger = logging.getLogger("spacy_sapel")
MODEL_DIR = "model-last"
CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "training.json"
_STATE_FILE = "state.pt"
_STATE_JSON = "state.json"
CHECKPOINT_MARKER = DirMarker("SAP checkpoint directory", (_STATE_JSON, _STATE_FILE))


@dataclass
class SapConfig:
    """Hyperparameters of SAP training; the defaults are SapBERT's where it states
    them (lr 2e-5, weight decay 0.01, MS loss alpha 1 / beta 60 / base 0.5, triplet
    miner margin 0.2 on all triplets). ``batch_size`` counts pairs (2 names each)."""

    #: settings that may differ between an interrupted run and its resumption
    resume_free: ClassVar[Tuple[str, ...]] = ("checkpoint_every", "max_seconds", "max_validation_pairs")

    lr: float = 2e-5
    weight_decay: float = 0.01
    batch_size: int = 64
    grad_accum: int = 1
    epochs: int = 1
    max_steps: int = 0
    warmup_ratio: float = 0.0
    alpha: float = 1.0
    beta: float = 60.0
    base: float = 0.5
    miner_margin: float = 0.2
    type_of_triplets: str = "all"
    freeze_embeddings: bool = False
    seed: int = 42
    checkpoint_every: int = 500
    max_seconds: float = 0.0
    max_validation_pairs: int = 2000
    batching: str = "random"
    concepts_per_batch: int = 8
    n_neighbors: int = 16

    def check(self) -> None:
        positive = {
            "lr": self.lr,
            "epochs": self.epochs,
            "grad_accum": self.grad_accum,
            "checkpoint_every": self.checkpoint_every,
            "beta": self.beta,
            "alpha": self.alpha,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise SapelError(Errors.E602.format(name=name, value=value))
        for name in ("weight_decay", "max_steps", "max_seconds", "miner_margin", "max_validation_pairs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SapelError(Errors.E602.format(name=name, value=value))
        if not 0 <= self.warmup_ratio < 1:
            raise SapelError(Errors.E602.format(name="warmup_ratio", value=self.warmup_ratio))
        if self.type_of_triplets not in TRIPLET_TYPES:
            raise SapelError(
                Errors.E602.format(name="type_of_triplets", value=self.type_of_triplets)
            )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise SapelError(Errors.E604.format(value=self.batch_size))
        if self.batching not in BATCHING:
            raise SapelError(Errors.E602.format(name="batching", value=self.batching))
        for name in ("concepts_per_batch", "n_neighbors"):
            value = getattr(self, name)
            check_int_option(name, value)


@dataclass
class SapResult:
    """What a training run did, as written to ``training.json``."""

    model_dir: Path
    steps: int
    total_steps: int
    seconds: float
    pairs_per_second: float
    final_loss: float
    validation: Dict[str, float] = field(default_factory=dict)
    batches_without_hard_pairs: int = 0


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


def validation_accuracy(encoder: SapEncoder, pairs: List[SynonymPair]) -> float:
    """acc@1 of finding, for each left name, a right name of the same concept among
    all right names of ``pairs`` (held-out concepts): synonym retrieval."""
    if not pairs:
        return float("nan")
    left = encoder.encode([p.left for p in pairs])
    right = encoder.encode([p.right for p in pairs])
    labels = np.array([p.label for p in pairs])
    best = (left @ right.T).argmax(axis=1)
    return float((labels[best] == labels).mean())


class SapTrainer:
    """Trains ``encoder`` in place on ``pairs`` and writes checkpoints and the final
    model under ``output_dir``."""

    def __init__(
        self,
        encoder: SapEncoder,
        pairs: PairSet,
        output_dir: Union[str, Path],
        *,
        config: Optional[SapConfig] = None,
        validation: Optional[PairSet] = None,
        recipe: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.config = config or SapConfig()
        self.config.check()
        self.encoder = encoder
        self.pairs = pairs
        self.output_dir = Path(output_dir)
        # refuse outputs that may not be replaced now, not after hours of training
        check_sap_output(self.output_dir)
        self.recipe = recipe or {}
        self.validation = list(validation.pairs) if validation is not None else []
        if self.config.max_validation_pairs and len(self.validation) > self.config.max_validation_pairs:
            rng = random.Random(self.config.seed)
            self.validation = rng.sample(self.validation, self.config.max_validation_pairs)
        cfg = self.config
        self.labels = {label: i for i, label in enumerate(pairs.labels)}
        self.n_batches = math.ceil(len(pairs) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(self.n_batches / cfg.grad_accum)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.base_fingerprint = encoder.fingerprint
        self.base_name = encoder.name
        self.data_digest = pairs.digest()
        self.pair_labels = np.asarray([self.labels[p.label] for p in pairs.pairs], dtype=np.int64)
        # the label neighbour graph of ``batching="hard"``: from the encoder before
        # its first update (epoch_order computes it), or restored from the checkpoint
        self.neighbors: Optional[np.ndarray] = None
        self._orders: Dict[int, np.ndarray] = {}

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The pair indices in the order epoch ``epoch`` visits them (seeded)."""
        if epoch not in self._orders:
            rng = np.random.default_rng(self.config.seed + epoch)
            if self.config.batching == "hard":
                if self.neighbors is None:
                    # encode() puts the model in eval mode and back
                    self.neighbors = label_neighbors(
                        self.encoder, self.pairs.pairs, self.pairs.labels, k=self.config.n_neighbors
                    )
                order = hard_order(
                    self.pair_labels, self.neighbors, batch_size=self.config.batch_size,
                    concepts_per_batch=self.config.concepts_per_batch, rng=rng,
                )
            else:
                order = rng.permutation(len(self.pairs))
            self._orders = {epoch: order}
        return self._orders[epoch]

    # --- the loop -----------------------------------------------------------------
    def train(self, *, resume: bool = False, show_progress: bool = True) -> SapResult:
        cfg = self.config
        model = self.encoder.model
        seed_everything(cfg.seed)
        optimizer, scheduler = make_optimizer(model, cfg, self.total_steps)
        use_amp = bool(self.encoder.fp16)
        scaler = torch.amp.GradScaler("cuda") if use_amp else None
        step, history = 0, []
        n_empty = n_batches_seen = 0
        if resume:
            step, history, n_empty, n_batches_seen = self._load_checkpoint(optimizer, scheduler, scaler)
            logger.info("Resumed from %s at step %d", self.output_dir / CHECKPOINT_DIR, step)
        elif self.validation:
            history.append({"step": 0, "val_acc@1": validation_accuracy(self.encoder, self.validation)})
        model.train()
        start = time.perf_counter()
        pairs_done = 0
        loss_avg = float("nan")
        stopped_early = False
        bar = tqdm(total=self.total_steps, initial=step, desc="SAP", unit="step", disable=not show_progress)
        try:
            while step < self.total_steps:
                epoch, group = divmod(step, self.steps_per_epoch)
                order = self.epoch_order(epoch)
                first = group * cfg.grad_accum
                batches = range(first, min(first + cfg.grad_accum, self.n_batches))
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                learned = False
                for b in batches:
                    rows = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                    batch = [self.pairs.pairs[i] for i in rows]
                    loss, mined = self._batch_loss(batch, use_amp)
                    n_batches_seen += 1
                    if not mined:
                        n_empty += 1
                        continue
                    loss = loss / len(batches)
                    (scaler.scale(loss) if scaler else loss).backward()
                    step_loss += float(loss.detach())
                    pairs_done += len(batch)
                    learned = True
                if learned and scaler:
                    scaler.step(optimizer)
                    scaler.update()
                elif learned:
                    optimizer.step()
                scheduler.step()
                step += 1
                loss_avg = step_loss if math.isnan(loss_avg) else 0.9 * loss_avg + 0.1 * step_loss
                history.append({"step": step, "loss": step_loss})
                elapsed = time.perf_counter() - start
                bar.update(1)
                bar.set_postfix(loss=f"{loss_avg:.4f}", pairs_s=f"{pairs_done / max(elapsed, 1e-9):.1f}")
                if cfg.max_seconds and elapsed >= cfg.max_seconds and step < self.total_steps:
                    stopped_early = True
                    break
                if step % cfg.checkpoint_every == 0 and step < self.total_steps:
                    self._validate(history, step)
                    self._save_checkpoint(step, optimizer, scheduler, scaler, history, n_empty, n_batches_seen)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        self._validate(history, step)
        self._save_checkpoint(step, optimizer, scheduler, scaler, history, n_empty, n_batches_seen)
        model.eval()
        self.encoder.reset_fingerprint()
        self.encoder.to_disk(self.output_dir / MODEL_DIR)
        if stopped_early:
            warnings.warn(Warnings.W602.format(seconds=seconds, step=step, total=self.total_steps))
        if n_empty:
            warnings.warn(Warnings.W601.format(count=n_empty, total=n_batches_seen))
        vals = [h["val_acc@1"] for h in history if "val_acc@1" in h]
        result = SapResult(
            model_dir=self.output_dir / MODEL_DIR,
            steps=step,
            total_steps=self.total_steps,
            seconds=seconds,
            pairs_per_second=pairs_done / max(seconds, 1e-9),
            final_loss=loss_avg,
            validation={"before": vals[0], "after": vals[-1]} if len(vals) > 1 else {},
            batches_without_hard_pairs=n_empty,
        )
        self._write_log(result, history)
        return result

    def _batch_loss(self, batch: List[SynonymPair], use_amp: bool) -> Tuple[torch.Tensor, bool]:
        """Multi-similarity loss over the 2B names of B pairs on the pairs the miner
        selects; False when the batch offers no hard triplet."""
        labels = torch.tensor([self.labels[p.label] for p in batch] * 2, device=self.encoder.device)
        if len(set(labels.tolist())) < 2:
            return torch.zeros(()), False
        context = torch.autocast(device_type="cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext()
        with context:
            embeddings = self.encoder.embed_batch(texts_of(batch))
        cfg = self.config
        hard = mine_triplets(embeddings, labels, margin=cfg.miner_margin, kind=cfg.type_of_triplets)
        if len(hard[0]) == 0:
            return torch.zeros(()), False
        return multi_similarity_loss(embeddings, hard, alpha=cfg.alpha, beta=cfg.beta, base=cfg.base), True

    def _validate(self, history: List[Dict[str, Any]], step: int) -> None:
        if self.validation:
            acc = validation_accuracy(self.encoder, self.validation)
            history.append({"step": step, "val_acc@1": acc})
            logger.info("step %d: validation synonym acc@1 %.3f", step, acc)

    # --- checkpoints --------------------------------------------------------------
    def _identity(self) -> Dict[str, Any]:
        cfg = self.config
        settings = {k: v for k, v in asdict(cfg).items() if k not in cfg.resume_free}
        return {
            "base_fingerprint": self.base_fingerprint,
            "base_name": self.base_name,
            "data_digest": self.data_digest,
            "n_pairs": len(self.pairs),
            "settings": settings,
        }

    def _save_checkpoint(self, step, optimizer, scheduler, scaler, history, n_empty, n_seen) -> None:
        self.encoder.reset_fingerprint()
        with atomic_directory(self.output_dir / CHECKPOINT_DIR, CHECKPOINT_MARKER) as tmp:
            self.encoder.to_disk(tmp / "encoder")
            state = {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler else None,
                "rng": rng_state(),
                "history": history,
                "n_empty": n_empty,
                "n_seen": n_seen,
                "neighbors": self.neighbors,
            }
            torch.save(state, tmp / _STATE_FILE)
            write_json(tmp / _STATE_JSON, {"step": step, **self._identity()})

    def _load_checkpoint(self, optimizer, scheduler, scaler) -> Tuple[int, list, int, int]:
        path = self.output_dir / CHECKPOINT_DIR
        if not (path / _STATE_JSON).is_file() or not (path / _STATE_FILE).is_file():
            raise SapelError(Errors.E606.format(path=path))
        saved = read_json(path / _STATE_JSON)
        mine = self._identity()
        if saved.get("base_fingerprint") != mine["base_fingerprint"]:
            problem = (
                f"it was trained from base encoder {saved.get('base_name')!r} (fingerprint "
                f"{saved.get('base_fingerprint')}), not {mine['base_name']!r} "
                f"({mine['base_fingerprint']})"
            )
            raise SapelError(Errors.E605.format(path=path, problem=problem))
        if saved.get("data_digest") != mine["data_digest"]:
            problem = (
                f"it was trained on other pairs ({saved.get('n_pairs')} pairs, digest "
                f"{saved.get('data_digest')}; now {mine['n_pairs']}, {mine['data_digest']})"
            )
            raise SapelError(Errors.E605.format(path=path, problem=problem))
        changed = {
            key: (saved["settings"].get(key), value)
            for key, value in mine["settings"].items()
            if saved.get("settings", {}).get(key) != value
        }
        if changed:
            problem = "the settings changed: " + ", ".join(
                f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()
            )
            raise SapelError(Errors.E605.format(path=path, problem=problem))
        trained = SapEncoder.from_disk(path / "encoder", device=self.encoder.device)
        self.encoder.model.load_state_dict(trained.model.state_dict())
        self.encoder.reset_fingerprint()
        state = torch.load(path / _STATE_FILE, map_location=self.encoder.device, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if self.config.batching == "hard":
            if state.get("neighbors") is None:
                raise SapelError(Errors.E605.format(path=path, problem="it holds no neighbour graph for batching='hard'"))
            self.neighbors = np.asarray(state["neighbors"])
        return state["step"], state["history"], state["n_empty"], state["n_seen"]

    def _write_log(self, result: SapResult, history: List[Dict[str, Any]]) -> None:
        log = {
            **self._identity(),
            "recipe": self.recipe,
            "config": asdict(self.config),
            "result": {**asdict(result), "model_dir": str(result.model_dir)},
            "history": history,
        }
        write_json(self.output_dir / LOG_FILE, log)
