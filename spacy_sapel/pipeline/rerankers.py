"""A learned reranker over each mention's candidates: a linear scorer of a few
features (retrieval scores, priors, the concepts of the labelled mentions nearest to
the mention, name kinds, the short form's long-form score, document context), trained
with a listwise softmax loss in numpy (deterministic, no extra dependency, nothing to
import on ``spacy.load``).

Registered as ``sapel.linear_reranker.v1`` for the linker's ``reranker`` setting. An
untrained reranker keeps the order it is given; a trained one is saved inside the
pipeline (``reranker/`` of the linker) and refused for another KB or encoder."""
from __future__ import annotations

import hashlib
import logging
import math
import re
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import srsly
from spacy.tokens import Doc
from spacy.util import registry

from ..errors import Errors, SapelError
from ..kb import KnowledgeBase
from ..kb.names import name_key
from ..util import DirMarker, PathLike, atomic_directory, read_json, write_json
from .linker_kb import Candidates, LinkerKB
from .ranking import Mention

logger = logging.getLogger("spacy_sapel")

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.npy"
META_FILE = "meta.json"
MEMORY_FILE = "mentions.npy"  # the target KB's labelled strings, encoded
RERANKER_MARKER = DirMarker("reranker directory", (META_FILE,), ("format_version", "features"))
#: Every feature the reranker knows, in the order of its weight vector.
FEATURES = (
    "score",  # retrieval score of the mention string (floor: its lowest candidate)
    "gap",  # best of score/long_form_score minus the best over the pool
    "rank",  # 1 / (1 + position after the priors and short-form policy)
    "long_form_score",  # retrieval score of the defined long form (0 without one)
    "short_form",  # the mention is a short form defined in the document
    "canonical",  # the mention (or its long form) equals the concept's canonical name
    "synonym",  # ... a synonym from the vocabulary
    "alias",  # ... a name added from training mentions
    "mention_prior",  # P(concept | mention string) from the KB's priors
    "long_form_prior",  # P(concept | long form string)
    "string_seen",  # log(1 + times the mention string was annotated at all)
    "concept_prior",  # log(1 + times the concept was gold)
    "n_names",  # log(number of the concept's names)
    "omim",  # the id scheme: OMIM-derived concept
    "supplementary",  # MeSH supplementary concept (C...)
    "context",  # share of the concept's name/definition words found in the document
    "doc_support",  # log(1 + other mentions of the doc whose first candidate it is)
    # lexical evidence beside the dense score: the mention's words (its long form's
    # too; plurals undone) against the concept's canonical name and its names
    "canonical_overlap",  # Jaccard of the mention's and the canonical name's words
    "mention_in_canonical",  # share of the mention's words in the canonical name
    "canonical_in_mention",  # share of the canonical name's words in the mention
    "name_overlap",  # best Dice of the mention's and one of the concept's names' words
    "char_similarity",  # best character-trigram Dice of the mention and a name
    # soft priors: the labelled mentions (the KB's priors) nearest to the mention
    "similar_mentions",  # the concept's similarity-weighted share of the k nearest
)
#: how many labelled mentions the ``similar_mentions`` feature reads per mention
SIMILAR_MENTIONS_K = 10
#: how many mention strings' votes a reranker keeps between batches (cleared beyond)
_VOTES_KEPT = 100_000
#: the most similarities (labelled strings x batch strings) computed in one product
_SIMILARITY_CELLS = 4_000_000
_WORD = re.compile(r"[a-z0-9]{3,}")
_STOP = frozenset(
    "and the with for from that this were was are not but its has have had been "
    "which who than into also may can their these those there".split()
)


def kb_fingerprint(kb: KnowledgeBase) -> str:
    """A short hash of a KB's concept ids and name count: what a reranker's features
    and priors refer to."""
    h = hashlib.sha256()
    h.update(str(kb.n_names).encode())
    for concept_id in kb.concept_ids:
        h.update(b"\0" + concept_id.encode("utf8"))
    return h.hexdigest()[:16]


@registry.misc("sapel.linear_reranker.v1")
def create_linear_reranker(features: Optional[List[str]] = None) -> "LinearReranker":
    """A linear reranker over ``features`` (default: all of :data:`FEATURES`)."""
    return LinearReranker(features=features)


class _ConceptText(NamedTuple):
    """What the features read of a concept's names, computed once per KB."""

    kinds: Dict[str, str]  # name key -> canonical / synonym / alias
    words: set  # words of its names and definition
    canonical: FrozenSet[str]  # word stems of its canonical name
    name_stems: List[FrozenSet[str]]  # word stems of each name
    name_grams: List[FrozenSet[str]]  # character trigrams of each name


class _SavedMemory(NamedTuple):
    """The encoded labelled strings of the KB a reranker was trained for, saved with
    it so that loading a pipeline does not encode them again."""

    digest: str  # of the KB's priors and the encoder (see :func:`_priors_digest`)
    strings: List[str]
    vectors: np.ndarray


def _priors_digest(linker_kb: LinkerKB) -> str:
    """A hash of a KB's labelled mention counts and the encoder's weights: what the
    saved vectors of :class:`_MentionMemory` depend on."""
    h = hashlib.sha256(linker_kb.encoder.fingerprint.encode())
    h.update(srsly.json_dumps(linker_kb.kb.priors.mention_counts, sort_keys=True).encode("utf8"))
    return h.hexdigest()[:16]


class _MentionMemory:
    """The labelled mention strings of a KB (the keys of its priors) encoded by the
    linker's encoder, for the ``similar_mentions`` feature: the priors generalised
    from a mention's exact spelling to the spellings nearest to it. :meth:`build`
    makes one on first use for each KB (and each set of priors), from the vectors
    saved with a trained reranker when they were made for the same priors and
    encoder."""

    def __init__(self, linker_kb: LinkerKB, digest: str, vectors: Optional[np.ndarray]) -> None:
        priors = linker_kb.kb.priors
        self._owner = (linker_kb.kb, priors, linker_kb.encoder, priors.n_mentions)
        self.strings = list(priors.mention_counts)
        self.counts = [priors.mention_counts[s] for s in self.strings]
        self.totals = np.array([sum(c.values()) for c in self.counts], dtype=float)
        self.digest = digest
        self.vectors = vectors

    @classmethod
    def build(cls, linker_kb: LinkerKB, saved: Optional["_SavedMemory"] = None) -> "_MentionMemory":
        """The memory of ``linker_kb``: ``saved``'s vectors where they were made for
        its priors and encoder, else its labelled strings encoded now."""
        strings = list(linker_kb.kb.priors.mention_counts)
        digest = _priors_digest(linker_kb)
        if saved is not None and saved.digest == digest and saved.strings == strings:
            return cls(linker_kb, digest, saved.vectors)
        if not strings:
            return cls(linker_kb, digest, None)
        logger.info(
            "Encoding the %d labelled mention strings of KB %r for the reranker's "
            "similar_mentions feature", len(strings), linker_kb.kb.meta.get("name"),
        )
        return cls(linker_kb, digest, linker_kb.encoder.encode(strings))

    def saved(self) -> "_SavedMemory":
        assert self.vectors is not None
        return _SavedMemory(self.digest, self.strings, self.vectors)

    def is_for(self, linker_kb: LinkerKB) -> bool:
        kb, priors, encoder, n_mentions = self._owner
        return (
            kb is linker_kb.kb
            and priors is linker_kb.kb.priors
            and encoder is linker_kb.encoder
            and n_mentions == priors.n_mentions  # counted into since
        )

    def vote(self, sims: np.ndarray, k: int) -> Dict[str, float]:
        """Each concept's share of the ``k`` labelled mentions nearest to a mention,
        given each labelled string's cosine similarity ``sims`` to it (the better of
        the mention's and its long form's): a string annotated n times is n mentions,
        each weighted by its similarity (at least 0); ties are taken in the order of
        the priors."""
        n = min(k, len(sims))
        top = np.argpartition(-sims, n - 1)[:n]
        top = top[np.lexsort((top, -sims[top]))]
        left, total = float(k), 0.0
        votes: Dict[str, float] = {}
        for j in top.tolist():
            taken = min(left, self.totals[j])
            weight = max(float(sims[j]), 0.0) * taken
            for concept_id, count in self.counts[j].items():
                votes[concept_id] = votes.get(concept_id, 0.0) + weight * count / self.totals[j]
            total += weight
            left -= taken
            if left <= 0:
                break
        return {c: v / total for c, v in votes.items()} if total > 0 else {}


class LinearReranker:
    """Scores each candidate as ``w · standardise(features)``; see the module docstring."""

    def __init__(self, *, features: Optional[Sequence[str]] = None) -> None:
        # without an explicit list, a saved model's own features are taken on load, so
        # a model trained before features were added keeps loading
        self._features_given = features is not None
        features = list(FEATURES if features is None else features)
        unknown = [f for f in features if f not in FEATURES]
        if unknown or not features:
            raise SapelError(
                Errors.E354.format(unknown=unknown or "(none given)", options=", ".join(FEATURES))
            )
        self._set_features(features)
        self.weights: Optional[np.ndarray] = None
        self.mean = np.zeros(len(features))
        self.scale = np.ones(len(features))
        self.meta: Dict[str, Any] = {}
        self._concept_cache: Dict[str, _ConceptText] = {}
        self._cache_owner: Optional[KnowledgeBase] = None
        self._memory: Optional[_MentionMemory] = None
        self._saved_memory: Optional[_SavedMemory] = None
        self._votes: Dict[Tuple[str, ...], Dict[str, float]] = {}

    def _set_features(self, features: List[str]) -> None:
        self.features = features
        self._columns = [FEATURES.index(f) for f in features]

    @property
    def is_trained(self) -> bool:
        return self.weights is not None

    def __call__(
        self, linker_kb: LinkerKB, doc: Doc, mentions: List[Mention], pools: List[Candidates]
    ) -> List[Candidates]:
        """The pools reordered by the model's scores (unchanged while untrained)."""
        if self.weights is None:
            return pools
        result = []
        for pool, x in zip(pools, self.featurize(linker_kb, doc, mentions, pools)):
            if len(pool) < 2:
                result.append(pool)
                continue
            scores = self.score(x)
            order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
            result.append([pool[i] for i in order])
        return result

    def score(self, x: np.ndarray) -> np.ndarray:
        assert self.weights is not None
        return ((x - self.mean) / self.scale) @ self.weights

    # --- features -----------------------------------------------------------------
    def featurize(
        self, linker_kb: LinkerKB, doc: Doc, mentions: List[Mention], pools: List[Candidates]
    ) -> List[np.ndarray]:
        """One [n_candidates, n_features] array per mention (this reranker's features)."""
        kb = linker_kb.kb
        if self._cache_owner is not kb:
            self._concept_cache = {}
            self._cache_owner = kb
        priors = kb.priors
        doc_words = _words(doc.text)
        firsts: Dict[str, int] = {}
        for mention, pool in zip(mentions, pools):
            if pool:
                firsts[pool[0][0]] = firsts.get(pool[0][0], 0) + 1
        similar = (
            self._similar_mentions(linker_kb, mentions)
            if "similar_mentions" in self.features
            else [{} for _ in mentions]
        )
        out = []
        for mention, pool, votes in zip(mentions, pools, similar):
            own = dict(mention.candidates)
            own_floor = min(own.values(), default=0.0)
            long = dict(mention.long_candidates or [])
            long_floor = min(long.values(), default=0.0)
            best = [max(own.get(c, own_floor), long.get(c, long_floor) if long else -1.0) for c, _ in pool]
            top = max(best, default=0.0)
            keys = [name_key(mention.text)]
            long_key = name_key(mention.long_text) if mention.long_text else None
            own_counts = priors.mention_counts.get(keys[0], {})
            own_total = sum(own_counts.values())
            long_counts = priors.mention_counts.get(long_key, {}) if long_key else {}
            long_total = sum(long_counts.values())
            mention_words = _words(mention.text) | (_words(mention.long_text) if mention.long_text else set())
            context_words = doc_words - mention_words
            stems = _stems(mention_words)
            grams = [_trigrams(t) for t in (mention.text, mention.long_text) if t]
            x = np.zeros((len(pool), len(FEATURES)))
            for i, (concept_id, _) in enumerate(pool):
                text = self._concept(kb, concept_id)
                words, canonical = text.words, text.canonical
                kind = text.kinds.get(keys[0]) or (text.kinds.get(long_key) if long_key else None)
                first_doc = firsts.get(concept_id, 0) - (1 if pool and pool[0][0] == concept_id else 0)
                x[i] = (
                    own.get(concept_id, own_floor),
                    best[i] - top,
                    1.0 / (1 + i),
                    long.get(concept_id, long_floor) if long else 0.0,
                    1.0 if long else 0.0,
                    kind == "canonical",
                    kind == "synonym",
                    kind == "alias",
                    own_counts.get(concept_id, 0) / own_total if own_total else 0.0,
                    long_counts.get(concept_id, 0) / long_total if long_total else 0.0,
                    math.log1p(own_total),
                    priors.log_concept_count(concept_id),
                    math.log(len(text.name_stems)),
                    concept_id.startswith("OMIM:"),
                    _is_supplementary(concept_id),
                    len(words & context_words) / len(words) if words else 0.0,
                    math.log1p(max(first_doc, 0)),
                    _jaccard(stems, canonical),
                    len(stems & canonical) / len(stems) if stems else 0.0,
                    len(stems & canonical) / len(canonical) if canonical else 0.0,
                    max((_dice(stems, n) for n in text.name_stems), default=0.0),
                    max((_dice(g, n) for g in grams for n in text.name_grams), default=0.0),
                    votes.get(concept_id, 0.0),
                )
            out.append(x[:, self._columns])
        return out

    def prepare(self, linker_kb: LinkerKB, mentions: List[Mention]) -> None:
        """Called by the linker once per batch of docs: :meth:`precompute` when the
        reranker is trained (an untrained one computes no features)."""
        if self.weights is not None:
            self.precompute(linker_kb, mentions)

    def precompute(self, linker_kb: LinkerKB, mentions: List[Mention]) -> None:
        """The features that the docs of a batch share, for all of its ``mentions`` at
        once: the ``similar_mentions`` votes, their strings encoded together rather
        than doc by doc (:meth:`featurize` computes what is missing)."""
        if "similar_mentions" in self.features:
            self._similar_mentions(linker_kb, mentions)

    def _similar_mentions(self, linker_kb: LinkerKB, mentions: List[Mention]) -> List[Dict[str, float]]:
        """Per mention, each concept's share of the labelled mentions nearest to the
        mention or its long form (see :class:`_MentionMemory`), kept per pair of
        strings until the KB changes (or the store passes ``_VOTES_KEPT``)."""
        memory = self._memory
        if memory is None or not memory.is_for(linker_kb):
            memory = self._memory = _MentionMemory.build(linker_kb, self._saved_memory)
            self._votes = {}
        if not memory.strings:
            return [{} for _ in mentions]
        assert memory.vectors is not None
        if len(self._votes) > _VOTES_KEPT:
            self._votes = {}
        keys = [tuple(dict.fromkeys(k for k in map(name_key, (m.text, m.long_text or "")) if k)) for m in mentions]
        missing = [key for key in dict.fromkeys(keys) if key and key not in self._votes]
        # one encoding and one product with the labelled strings per slice of the
        # batch's strings, bounded in memory however many labelled strings there are
        # (a key holds at most two strings: the mention and its long form)
        step = max(1, _SIMILARITY_CELLS // (2 * len(memory.strings)))
        for start in range(0, len(missing), step):
            part = missing[start : start + step]
            texts = list(dict.fromkeys(t for key in part for t in key))
            at = {t: i for i, t in enumerate(texts)}
            sims = memory.vectors @ linker_kb.encoder.encode(texts).T
            for key in part:
                best = sims[:, [at[t] for t in key]].max(axis=1)
                self._votes[key] = memory.vote(best, SIMILAR_MENTIONS_K)
        return [self._votes[key] if key else {} for key in keys]

    def _concept(self, kb: KnowledgeBase, concept_id: str) -> _ConceptText:
        """Per concept, cached per KB: see :class:`_ConceptText`."""
        cached = self._concept_cache.get(concept_id)
        if cached is None:
            concept = kb[concept_id]
            names = concept.names()
            kinds = kb.name_kinds(concept)
            words = set()
            for text in (*names, concept.definition or ""):
                words |= _words(text)
            cached = _ConceptText(
                kinds, words, _stems(_words(concept.canonical_name)),
                [_stems(_words(n)) for n in names], [_trigrams(n) for n in names],
            )
            self._concept_cache[concept_id] = cached
        return cached

    # --- training -----------------------------------------------------------------
    def fit(
        self,
        examples: Sequence[Tuple[np.ndarray, np.ndarray]],
        *,
        l2: float = 1e-3,
        steps: int = 500,
        learning_rate: float = 0.1,
    ) -> float:
        """Fit the weights to ``examples`` (per mention: features [n, d] and a boolean
        mask of the right candidates) by minimising the listwise softmax loss
        ``-log sum_right softmax(w · x)`` with Adam, full batch from zero weights:
        deterministic. Returns the final mean loss."""
        xs = np.concatenate([x for x, _ in examples])
        self.mean = xs.mean(axis=0)
        scale = xs.std(axis=0)
        self.scale = np.where(scale > 1e-9, scale, 1.0)
        sizes = np.array([len(x) for x, _ in examples])
        group = np.repeat(np.arange(len(examples)), sizes)
        z = (xs - self.mean) / self.scale
        right = np.concatenate([y for _, y in examples]).astype(float)
        w = np.zeros(z.shape[1])
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        loss = 0.0
        for step in range(1, steps + 1):
            s = z @ w
            s_max = np.zeros(len(examples))
            np.maximum.at(s_max, group, s)
            e = np.exp(s - s_max[group])
            total = np.bincount(group, e, minlength=len(examples))
            good = np.bincount(group, e * right, minlength=len(examples))
            loss = float(np.mean(np.log(total) - np.log(good))) + l2 * float(w @ w)
            p_all = e / total[group]
            p_good = e * right / good[group]
            grad = z.T @ (p_all - p_good) / len(examples) + 2 * l2 * w
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            w -= learning_rate * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        self.weights = w
        return loss

    def set_target(self, linker_kb: LinkerKB) -> None:
        """Record the KB and encoder the weights are for (checked on load)."""
        self.meta = {
            "format_version": FORMAT_VERSION,
            "features": list(self.features),
            "kb": kb_fingerprint(linker_kb.kb),
            "kb_name": linker_kb.kb.meta.get("name"),
            "encoder": linker_kb.encoder.fingerprint,
        }
        # the target KB's labelled strings, encoded now and saved with the weights
        self._saved_memory = None
        if "similar_mentions" in self.features and linker_kb.kb.priors:
            if self._memory is None or not self._memory.is_for(linker_kb):
                self._memory = _MentionMemory.build(linker_kb)
                self._votes = {}
            self._saved_memory = self._memory.saved()

    def check(self, linker_kb: LinkerKB) -> None:
        """Refuse a KB or encoder other than the one the weights were trained for."""
        if self.weights is None:
            return
        kb = kb_fingerprint(linker_kb.kb)
        if self.meta.get("kb") != kb:
            raise SapelError(
                Errors.E352.format(
                    what="the KB", trained=f"{self.meta.get('kb_name')!r} ({self.meta.get('kb')})",
                    found=f"{linker_kb.kb.meta.get('name')!r} ({kb})",
                )
            )
        if self.meta.get("encoder") != linker_kb.encoder.fingerprint:
            raise SapelError(
                Errors.E352.format(
                    what="the encoder", trained=self.meta.get("encoder"),
                    found=linker_kb.encoder.fingerprint,
                )
            )

    # --- serialization ------------------------------------------------------------
    def _state(self) -> Dict[str, Any]:
        assert self.weights is not None
        return {
            **self.meta,
            "weights": self.weights.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    def _load_state(
        self, state: Any, *, path: str, vectors: Optional[np.ndarray] = None
    ) -> "LinearReranker":
        try:
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
            if state.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format version {state.get('format_version')!r}")
            saved = state.get("features")
            features = self.features
            if (
                not self._features_given
                and isinstance(saved, list)
                and saved
                and all(isinstance(f, str) and f in FEATURES for f in saved)
            ):
                features = list(saved)
            if saved != features:
                raise ValueError(f"it scores features {saved}, the config asks for {features}")
            arrays = [np.asarray(state[k], dtype=float) for k in ("weights", "mean", "scale")]
            if any(a.shape != (len(features),) for a in arrays):
                raise ValueError("weights, mean and scale must have one value per feature")
            memory = _load_memory(state.get("memory"), vectors)
        except (KeyError, TypeError, ValueError) as err:
            raise SapelError(Errors.E353.format(path=path, problem=err)) from err
        self._set_features(features)
        self.weights, self.mean, self.scale = arrays
        self.meta = {k: v for k, v in state.items() if k not in ("weights", "mean", "scale", "memory")}
        self._saved_memory, self._memory, self._votes = memory, None, {}
        return self

    def _memory_state(self) -> Dict[str, Any]:
        memory = self._saved_memory
        if memory is None:
            return {}
        return {"memory": {"digest": memory.digest, "strings": memory.strings}}

    def to_disk(self, path: PathLike) -> None:
        with atomic_directory(path, RERANKER_MARKER) as tmp:
            write_json(tmp / META_FILE, {**self._state(), **self._memory_state()})
            if self._saved_memory is not None:
                np.save(tmp / MEMORY_FILE, self._saved_memory.vectors, allow_pickle=False)

    def from_disk(self, path: PathLike) -> "LinearReranker":
        file = Path(path) / META_FILE
        vectors_file = Path(path) / MEMORY_FILE
        try:
            state = read_json(file)
            vectors = np.load(vectors_file, allow_pickle=False) if vectors_file.exists() else None
        except (OSError, ValueError) as err:
            raise SapelError(Errors.E353.format(path=file, problem=err)) from err
        return self._load_state(state, path=str(file), vectors=vectors)

    def to_bytes(self) -> bytes:
        state = {**self._state(), **self._memory_state()}
        if self._saved_memory is not None:
            state["memory"]["vectors"] = self._saved_memory.vectors  # srsly packs arrays
        return srsly.msgpack_dumps(state)

    def from_bytes(self, data: bytes) -> "LinearReranker":
        try:
            state = srsly.msgpack_loads(data)
            memory = state.get("memory") if isinstance(state, dict) else None
            vectors = memory.pop("vectors", None) if isinstance(memory, dict) else None
        except (ValueError, TypeError) as err:
            raise SapelError(Errors.E353.format(path="<bytes>", problem=err)) from err
        return self._load_state(state, path="<bytes>", vectors=vectors)


def _load_memory(memory: Any, vectors: Optional[np.ndarray]) -> Optional[_SavedMemory]:
    """The saved labelled strings and their vectors (None when not saved); a
    ValueError says what does not fit."""
    if memory is None:
        if vectors is not None:
            raise ValueError(f"{MEMORY_FILE} without the strings it encodes")
        return None
    if not isinstance(memory, dict) or not isinstance(memory.get("digest"), str):
        raise ValueError("its memory is not an object with a digest")
    strings = memory.get("strings")
    if not isinstance(strings, list) or not all(isinstance(t, str) for t in strings):
        raise ValueError("its memory's strings are not a list of strings")
    if vectors is None:
        raise ValueError(f"its memory's vectors ({MEMORY_FILE}) are missing")
    if (
        not isinstance(vectors, np.ndarray)
        or vectors.ndim != 2
        or len(vectors) != len(strings)
        or vectors.dtype != np.float32
    ):
        found = (
            f"shape {vectors.shape} ({vectors.dtype})"
            if isinstance(vectors, np.ndarray)
            else f"type {type(vectors).__name__}"
        )
        raise ValueError(
            f"its memory holds {len(strings)} strings but vectors of {found}; expected one "
            "float32 row per string"
        )
    return _SavedMemory(memory["digest"], strings, vectors)


def _words(text: str) -> set:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _stems(words: set) -> frozenset:
    """Words with an English plural undone ("tumors" -> "tumor", "dystrophies" ->
    "dystrophy"; "disease", "illness" stay)."""
    return frozenset(_singular(w) for w in words)


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _trigrams(text: str) -> frozenset:
    key = f" {name_key(text)} "
    return frozenset(key[i : i + 3] for i in range(len(key) - 2))


def _dice(a: frozenset, b: frozenset) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _is_supplementary(concept_id: str) -> bool:
    bare = concept_id[5:] if concept_id.startswith("MESH:") else concept_id
    return bare[:1] == "C" and bare[1:].isdigit()
