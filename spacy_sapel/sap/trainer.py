"""SAP training (SapBERT): multi-similarity loss with online hard-triplet mining
inside each batch of synonym pairs, on the training loop of :mod:`.loop` (AdamW with
linear warm-up and decay, gradient accumulation, mixed precision on a GPU, atomic
checkpoints and exact resume)."""
from __future__ import annotations

import contextlib
import logging
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..encoder.sap_encoder import SapEncoder
from ..errors import Errors, SapelError, Warnings
from ..util import check_int_option
from .batching import BATCHING, hard_order, label_neighbors
from .loop import StepTrainer
from .loss import TRIPLET_TYPES, mine_triplets, multi_similarity_loss
from .pairs import PairSet, SynonymPair, texts_of

logger = logging.getLogger("spacy_sapel")


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
        for name in ("lr", "beta", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise SapelError(Errors.E602.format(name=name, value=value))
        for name in ("epochs", "grad_accum", "checkpoint_every"):
            check_int_option(name, getattr(self, name))
        for name in ("max_steps", "max_validation_pairs"):
            check_int_option(name, getattr(self, name), minimum=0)
        for name in ("weight_decay", "max_seconds", "miner_margin"):
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


def synonym_hits(encoder: SapEncoder, pairs: Sequence[SynonymPair]) -> np.ndarray:
    """For each pair, whether its left name's nearest right name among all right
    names of ``pairs`` (held-out concepts) is of the same concept: synonym retrieval."""
    if not pairs:
        return np.zeros(0, dtype=bool)
    left = encoder.encode([p.left for p in pairs])
    right = encoder.encode([p.right for p in pairs])
    labels = np.array([p.label for p in pairs])
    return labels[(left @ right.T).argmax(axis=1)] == labels


def validation_accuracy(encoder: SapEncoder, pairs: List[SynonymPair]) -> float:
    """acc@1 of :func:`synonym_hits` (NaN without pairs)."""
    return float(synonym_hits(encoder, pairs).mean()) if pairs else float("nan")



class SapTrainer(StepTrainer[SapResult]):
    """Trains ``encoder`` in place on ``pairs`` and writes checkpoints and the final
    model under ``output_dir`` (:mod:`.loop`)."""

    mixed_precision = True
    progress_desc = "SAP"
    progress_rate = "pairs_s"

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
        super().__init__(encoder, output_dir, config or SapConfig(), recipe)
        self.pairs = pairs
        self.validation = list(validation.pairs) if validation is not None else []
        if self.config.max_validation_pairs and len(self.validation) > self.config.max_validation_pairs:
            rng = random.Random(self.config.seed)
            self.validation = rng.sample(self.validation, self.config.max_validation_pairs)
        self.labels = {label: i for i, label in enumerate(pairs.labels)}
        self._plan(len(pairs), pairs.digest())
        self.pair_labels = np.asarray([self.labels[p.label] for p in pairs.pairs], dtype=np.int64)
        # the label neighbour graph of ``batching="hard"``: from the encoder before
        # its first update (epoch_order computes it), or restored from the checkpoint
        self.neighbors: Optional[np.ndarray] = None
        self._orders: Dict[int, np.ndarray] = {}
        # batches seen, and those of them without a hard triplet (W601)
        self.n_seen = self.n_empty = 0

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

    def batch_loss(self, rows: np.ndarray) -> Optional[torch.Tensor]:
        """The loss of the pairs ``rows``; None (counted) without a hard triplet."""
        loss, mined = self._batch_loss([self.pairs.pairs[i] for i in rows], self.use_amp)
        self.n_seen += 1
        if not mined:
            self.n_empty += 1
            return None
        return loss

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

    def _result(self, common: Dict[str, Any], rate: float, history: List[Dict[str, Any]]) -> SapResult:
        if self.n_empty:
            warnings.warn(Warnings.W601.format(count=self.n_empty, total=self.n_seen))
        vals = [h["val_acc@1"] for h in history if "val_acc@1" in h]
        return SapResult(
            **common,
            pairs_per_second=rate,
            validation={"before": vals[0], "after": vals[-1]} if len(vals) > 1 else {},
            batches_without_hard_pairs=self.n_empty,
        )

    # --- checkpoints --------------------------------------------------------------
    def _data_sizes(self) -> Dict[str, int]:
        return {"n_pairs": len(self.pairs)}

    def _other_data(self, saved: Dict[str, Any], mine: Dict[str, Any]) -> str:
        return (
            f"it was trained on other pairs ({saved.get('n_pairs')} pairs, digest "
            f"{saved.get('data_digest')}; now {mine['n_pairs']}, {mine['data_digest']})"
        )

    def _checkpoint_state(self, path: Path) -> Dict[str, Any]:
        return {"n_empty": self.n_empty, "n_seen": self.n_seen, "neighbors": self.neighbors}

    def _restore(self, state: Dict[str, Any], path: Path) -> None:
        if self.config.batching == "hard":
            if state.get("neighbors") is None:
                raise SapelError(Errors.E605.format(path=path, problem="it holds no neighbour graph for batching='hard'"))
            self.neighbors = np.asarray(state["neighbors"])
        self.n_empty, self.n_seen = state["n_empty"], state["n_seen"]
