"""Retrieval-aware fine-tuning (BioSyn's synonym marginalisation, Sung et al. 2020).

For each labelled training mention, the current encoder retrieves the ``n_candidates``
nearest names from the *whole* KB; the loss (``loss="marginal"``) is the negative log
of the softmax mass that the scores put on the candidates that are names of the gold
concept. ``loss="multi_similarity"`` trains the same candidates with SapBERT's
multi-similarity loss instead: the gold concept's names are the positives, every other
candidate a negative (retrieval is the mining). When retrieval missed the gold concept,
its best-scoring name replaces the last candidate, so every mention has a positive.
SAP's in-batch negatives are random concepts; these are the neighbours the linker
actually confuses. With ``sparse_candidates = s``, the first ``s`` candidates of each
mention are its nearest names by character n-gram TF-IDF (:class:`..index.SparseIndex`,
computed once: they do not change with the weights) and the dense retrieval fills the
rest, as BioSyn mixes sparse and dense candidates; the loss still scores them densely.

Candidates come from cached name vectors, refreshed every ``refresh_every`` steps (or
at the start of each epoch). The first refresh encodes the whole KB; later ones either
do too (``refresh_names=0``) or, to fit a CPU budget, re-encode only the names of the
concepts retrieved last time and of the gold concepts, plus ``refresh_names`` random
other names (the other vectors stay as they were). A name spelled like the mention
itself (``name_key``) is never a candidate: with training mentions added to the KB as
aliases it would be a trivial positive.

The checkpoint holds the name vectors and candidates next to the optimizer and RNG
states, so ``resume`` continues exactly where an uninterrupted run would be.
"""
from __future__ import annotations

import hashlib
import logging
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..encoder.sap_encoder import SapEncoder
from ..errors import Errors, SapelError, Warnings
from ..index.sparse import SparseIndex
from ..kb import KnowledgeBase
from ..kb.knowledge_base import name_key
from ..util import check_int_option
from .loop import STATE_FILE, STATE_JSON, StepTrainer
from .loss import multi_similarity

logger = logging.getLogger("spacy_sapel")
_VECTORS_FILE = "name_vectors.npy"
# queries scored against the KB at once while retrieving (memory: block x n_names)
_QUERY_BLOCK = 256
#: the losses of retrieval training, each with the settings only it uses: BioSyn's
#: marginal likelihood, and SapBERT's multi-similarity loss
LOSSES: Dict[str, Tuple[str, ...]] = {
    "marginal": ("scale",),
    "multi_similarity": ("alpha", "beta", "base"),
}


@dataclass
class RetrievalConfig:
    """Settings of retrieval-aware training. ``batch_size`` counts mentions (each
    brings ``n_candidates`` names into the forward pass). ``loss`` is one of
    :data:`LOSSES`: with ``"marginal"``, ``scale`` multiplies the cosine similarities
    before the softmax (an inverse temperature); with ``"multi_similarity"``, ``alpha``,
    ``beta`` and ``base`` are the loss's (SapBERT's defaults). A setting of the other
    loss must stay at its default."""

    #: settings that may differ between an interrupted run and its resumption
    resume_free: ClassVar[Tuple[str, ...]] = ("checkpoint_every", "max_seconds")

    lr: float = 2e-5
    weight_decay: float = 0.01
    batch_size: int = 16
    grad_accum: int = 1
    epochs: int = 1
    max_steps: int = 0
    warmup_ratio: float = 0.0
    n_candidates: int = 20
    sparse_candidates: int = 0
    refresh_every: int = 0
    refresh_names: int = 0
    loss: str = "marginal"
    scale: float = 20.0
    alpha: float = 1.0
    beta: float = 60.0
    base: float = 0.5
    freeze_embeddings: bool = False
    seed: int = 42
    checkpoint_every: int = 500
    max_seconds: float = 0.0

    def check(self) -> None:
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise SapelError(Errors.E624.format(value=self.loss, options=", ".join(LOSSES)))
        for name in ("lr", "scale", "alpha", "beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise SapelError(Errors.E602.format(name=name, value=value))
        if isinstance(self.base, bool) or not isinstance(self.base, (int, float)) or not -1 <= self.base <= 1:
            raise SapelError(Errors.E602.format(name="base", value=self.base))
        defaults = {f.name: f.default for f in fields(self)}
        for loss, settings in LOSSES.items():
            for name in settings:
                default = defaults[name]
                if loss != self.loss and getattr(self, name) != default:
                    raise SapelError(Errors.E625.format(
                        name=name, value=getattr(self, name), loss=self.loss, default=default, other=loss
                    ))
        for name in ("batch_size", "grad_accum", "epochs", "n_candidates", "checkpoint_every"):
            value = getattr(self, name)
            check_int_option(name, value)
        for name in ("max_steps", "refresh_every", "refresh_names", "sparse_candidates"):
            value = getattr(self, name)
            check_int_option(name, value, minimum=0)
        for name in ("weight_decay", "max_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SapelError(Errors.E602.format(name=name, value=value))
        if not 0 <= self.warmup_ratio < 1:
            raise SapelError(Errors.E602.format(name="warmup_ratio", value=self.warmup_ratio))
        if self.sparse_candidates >= self.n_candidates:
            raise SapelError(Errors.E626.format(sparse=self.sparse_candidates, k=self.n_candidates))


@dataclass
class RetrievalResult:
    """What a retrieval-aware run did, as written to ``training.json``."""

    model_dir: Path
    steps: int
    total_steps: int
    seconds: float
    mentions_per_second: float
    final_loss: float
    refreshes: List[Dict[str, Any]] = field(default_factory=list)


def marginal_nll(scores: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-log(sum of softmax(scores) over the gold columns)``;
    every row needs a gold column."""
    positive = torch.logsumexp(scores.masked_fill(~gold, float("-inf")), dim=1)
    return (torch.logsumexp(scores, dim=1) - positive).mean()


class RetrievalTrainer(StepTrainer[RetrievalResult]):
    """Trains ``encoder`` in place on ``mentions`` ((text, concept id) pairs) against
    candidates retrieved from ``kb``; writes checkpoints and the final model under
    ``output_dir`` in the layout of :class:`.trainer.SapTrainer` (:mod:`.loop`)."""

    objective = "retrieval"
    checkpoint_files = (STATE_JSON, STATE_FILE, _VECTORS_FILE)
    progress_desc = "Retrieval"
    progress_rate = "mentions_s"

    def __init__(
        self,
        encoder: SapEncoder,
        kb: KnowledgeBase,
        mentions: Sequence[Tuple[str, str]],
        output_dir: Union[str, Path],
        *,
        config: Optional[RetrievalConfig] = None,
        recipe: Optional[Dict[str, Any]] = None,
        source: str = "mentions",
        name_vectors: Optional[np.ndarray] = None,
    ) -> None:
        super().__init__(encoder, output_dir, config or RetrievalConfig(), recipe)
        names, rows = kb.alias_table()
        self.names: List[str] = list(names)
        self.name_rows = np.asarray(rows, dtype=np.int64)
        by_key: Dict[str, List[int]] = {}
        by_row: Dict[int, List[int]] = {}
        for i, (name, row) in enumerate(zip(self.names, self.name_rows.tolist())):
            by_key.setdefault(name_key(name), []).append(i)
            by_row.setdefault(row, []).append(i)
        self.queries: List[str] = []
        gold: List[int] = []
        self.same_name: List[np.ndarray] = []
        self.gold_names: List[np.ndarray] = []
        skipped = {"gold concept not in the KB": 0, "no other name of the gold concept": 0}
        for text, concept_id in dict.fromkeys((t, c) for t, c in mentions):
            if concept_id not in kb:
                skipped["gold concept not in the KB"] += 1
                continue
            row = kb.concept_row(concept_id)
            key = name_key(text)
            own = [i for i in by_row.get(row, []) if name_key(self.names[i]) != key]
            if not own:
                skipped["no other name of the gold concept"] += 1
                continue
            self.queries.append(text)
            gold.append(row)
            self.same_name.append(np.asarray(by_key.get(key, []), dtype=np.int64))
            self.gold_names.append(np.asarray(own, dtype=np.int64))
        self.gold = np.asarray(gold, dtype=np.int64)
        self.skipped = {k: v for k, v in skipped.items() if v}
        if len(self.queries) < 1:
            details = ", ".join(f"{k}: {v}" for k, v in self.skipped.items()) or "no mentions"
            raise SapelError(Errors.E623.format(source=source, details=details))
        if self.skipped:
            details = ", ".join(f"{k}: {v}" for k, v in self.skipped.items())
            warnings.warn(Warnings.W620.format(source=source, details=details), UserWarning, stacklevel=2)
        cfg = self.config
        self.n_candidates = min(cfg.n_candidates, len(self.names) - 1)
        if self.n_candidates < 2:
            raise SapelError(Errors.E602.format(name="n_candidates", value=cfg.n_candidates))
        self._plan(len(self.queries), self._digest())
        self.vectors: Optional[np.ndarray] = None
        if name_vectors is not None:
            # the base encoder's vectors of the KB names (``kb.alias_table()`` order),
            # e.g. from an evaluation: the first refresh then only encodes the mentions
            name_vectors = np.asarray(name_vectors, dtype=np.float32)
            if name_vectors.shape != (len(self.names), encoder.dim):
                raise SapelError(
                    Errors.E602.format(name="name_vectors", value=f"array of shape {name_vectors.shape}, "
                                       f"expected {(len(self.names), encoder.dim)}")
                )
            self.vectors = name_vectors.copy()
        self._given_vectors = name_vectors is not None
        self.candidates: Optional[np.ndarray] = None
        self.refreshes: List[Dict[str, Any]] = []
        self._sparse: Optional[np.ndarray] = None

    def _digest(self) -> str:
        h = hashlib.sha256()
        for text, row in zip(self.queries, self.gold.tolist()):
            h.update(f"q\t{text}\t{row}\n".encode("utf8"))
        for name, row in zip(self.names, self.name_rows.tolist()):
            h.update(f"n\t{name}\t{row}\n".encode("utf8"))
        return h.hexdigest()[:16]

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The mention indices in the order epoch ``epoch`` visits them (seeded)."""
        return np.random.default_rng([self.config.seed, epoch]).permutation(len(self.queries))

    def refresh_due(self, step: int) -> bool:
        """Whether candidates are retrieved afresh before optimizer step ``step``."""
        if self.candidates is None:
            return True
        every = self.config.refresh_every or self.steps_per_epoch
        return step % every == 0

    # --- candidates ---------------------------------------------------------------
    def refresh(self, step: int) -> Dict[str, Any]:
        """Re-encode the KB names (all, or the sampled set) and the mentions with the
        current weights and retrieve each mention's candidates."""
        start = time.perf_counter()
        if self._given_vectors:
            todo = np.zeros(0, dtype=np.int64)
            self._given_vectors = False
        elif self.vectors is None or not self.config.refresh_names:
            todo = np.arange(len(self.names))
        else:
            concepts = np.union1d(np.unique(self.name_rows[self.candidates]), self.gold)
            kept = np.isin(self.name_rows, concepts)
            rest = np.flatnonzero(~kept)
            rng = np.random.default_rng([self.config.seed, step, 1])
            extra = rng.choice(rest, size=min(self.config.refresh_names, len(rest)), replace=False)
            todo = np.union1d(np.flatnonzero(kept), extra)
        if self.vectors is None:
            self.vectors = np.zeros((len(self.names), self.encoder.dim), dtype=np.float32)
        if len(todo):
            self.vectors[todo] = self.encoder.encode([self.names[i] for i in todo])
        self.candidates, recall = self._retrieve(self.encoder.encode(self.queries))
        record = {
            "step": step,
            "names": int(len(todo)),
            "seconds": round(time.perf_counter() - start, 3),
            "gold_retrieved": round(recall, 4),
        }
        self.refreshes.append(record)
        logger.info(
            "step %d: retrieved candidates afresh (%d names encoded in %.1fs; gold concept "
            "among the top %d for %.1f%% of the mentions)",
            step, record["names"], record["seconds"], self.n_candidates, 100 * recall,
        )
        return record

    def sparse_candidates(self) -> np.ndarray:
        """Each mention's ``config.sparse_candidates`` nearest names by character
        n-gram TF-IDF, names spelled like the mention excluded (``[n_mentions, s]``,
        -1 where fewer names share an n-gram with it); computed once."""
        want = self.config.sparse_candidates
        if self._sparse is None:
            self._sparse = np.full((len(self.queries), want), -1, dtype=np.int64)
            if want:
                start = time.perf_counter()
                index = SparseIndex()
                index.build(self.names)
                extra = max(len(same) for same in self.same_name)
                _, rows = index.search(self.queries, min(want + extra, len(self.names)))
                for q, found in enumerate(rows):
                    found = found[(found >= 0) & ~np.isin(found, self.same_name[q])][:want]
                    self._sparse[q, : len(found)] = found
                logger.info("sparse candidates of %d mentions among %d names in %.1fs",
                            len(self.queries), len(self.names), time.perf_counter() - start)
        return self._sparse

    def _retrieve(self, query_vectors: np.ndarray) -> Tuple[np.ndarray, float]:
        """Top-k name indices per mention by cosine (names spelled like the mention
        excluded) after the sparse candidates, the gold concept's best name forced
        into the last slot where retrieval missed it; and the fraction of mentions it
        did not miss."""
        k = self.n_candidates
        names = torch.from_numpy(self.vectors)
        sparse_top = self.sparse_candidates()
        out = np.empty((len(self.queries), k), dtype=np.int64)
        hits = 0
        for first in range(0, len(self.queries), _QUERY_BLOCK):
            block = range(first, min(first + _QUERY_BLOCK, len(self.queries)))
            scores = torch.from_numpy(query_vectors[first : block.stop]) @ names.T
            for row, q in enumerate(block):
                scores[row, torch.from_numpy(self.same_name[q])] = float("-inf")
            top = torch.topk(scores, k, dim=1).indices.numpy()
            # the sparse picks first, the dense ranking fills the slots they leave
            for row, fixed in enumerate(sparse_top[first : block.stop]):
                picked = fixed[fixed >= 0]
                if len(picked):
                    rest = top[row][~np.isin(top[row], picked)]
                    top[row] = np.concatenate([picked, rest])[:k]
            for row, q in enumerate(block):
                if (self.name_rows[top[row]] == self.gold[q]).any():
                    hits += 1
                    continue
                own = self.gold_names[q]
                top[row, -1] = own[int(scores[row, torch.from_numpy(own)].argmax())]
            out[first : block.stop] = top
        return out, hits / len(self.queries)

    def batch_loss(self, rows: np.ndarray) -> torch.Tensor:
        """The loss of the mentions ``rows`` over their candidates (``config.loss``),
        mentions and candidate names encoded with gradients in one forward pass."""
        candidates = self.candidates[rows]
        unique, inverse = np.unique(candidates.ravel(), return_inverse=True)
        texts = [self.queries[i] for i in rows] + [self.names[i] for i in unique]
        embeddings = self.encoder.embed_batch(texts)
        queries, names = embeddings[: len(rows)], embeddings[len(rows) :]
        index = torch.from_numpy(inverse.reshape(candidates.shape)).to(queries.device)
        sims = (queries @ names.T).gather(1, index)
        gold = torch.from_numpy(self.name_rows[candidates] == self.gold[rows][:, None]).to(sims.device)
        cfg = self.config
        if cfg.loss == "multi_similarity":
            return multi_similarity(sims, gold, ~gold, alpha=cfg.alpha, beta=cfg.beta, base=cfg.base)
        return marginal_nll(cfg.scale * sims, gold)

    # --- the loop (:class:`.loop.StepTrainer`) ------------------------------------
    def _before_step(self, step: int) -> None:
        if self.refresh_due(step):
            self.refresh(step)

    def _result(self, common: Dict[str, Any], rate: float, history: List[Dict[str, Any]]) -> RetrievalResult:
        return RetrievalResult(**common, mentions_per_second=rate, refreshes=list(self.refreshes))

    def _log_extras(self) -> Dict[str, Any]:
        return {"skipped_mentions": self.skipped}

    # --- checkpoints --------------------------------------------------------------
    def _data_sizes(self) -> Dict[str, int]:
        return {"n_mentions": len(self.queries), "n_names": len(self.names)}

    def _other_data(self, saved: Dict[str, Any], mine: Dict[str, Any]) -> str:
        return (
            f"it was trained on other mentions or KB names ({saved.get('n_mentions')} "
            f"mentions, {saved.get('n_names')} names; now {mine['n_mentions']}, {mine['n_names']})"
        )

    def _checkpoint_state(self, path: Path) -> Dict[str, Any]:
        np.save(path / _VECTORS_FILE, self.vectors)
        return {"refreshes": self.refreshes, "candidates": self.candidates}

    def _restore(self, state: Dict[str, Any], path: Path) -> None:
        self.vectors = np.load(path / _VECTORS_FILE)
        self._given_vectors = False  # the checkpoint's vectors replace any given ones
        self.candidates = np.asarray(state["candidates"])
        self.refreshes = list(state["refreshes"])
