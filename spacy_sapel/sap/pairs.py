"""Training pairs for self-alignment pretraining (SAP): synonym pairs of a knowledge
base or a NeMo pairs TSV, (mention, name) pairs of a labelled PubTator corpus and a
held-out validation slice of concepts."""
from __future__ import annotations

import hashlib
import random
import warnings
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

from ..errors import Errors, SapelError, Warnings
from ..kb import KnowledgeBase
from ..kb.knowledge_base import clean_name, format_examples, name_key
from ..training.mentions import labelled_mentions
from ..util import PathLike, check_int_option, iter_lines, malformed_line


@dataclass(frozen=True, slots=True)
class SynonymPair:
    """Two names of one concept; ``label`` is the concept id (the loss's class)."""

    label: str
    left: str
    right: str


@dataclass
class PairSet:
    """Pairs in training order plus what was skipped while making them."""

    pairs: List[SynonymPair]
    source: str
    n_single_name: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def labels(self) -> List[str]:
        """Distinct labels in first-seen order."""
        return list(dict.fromkeys(pair.label for pair in self.pairs))

    def digest(self) -> str:
        """A short sha256 of the pairs in order: ties a checkpoint to its data."""
        h = hashlib.sha256()
        for pair in self.pairs:
            h.update(f"{pair.label}\t{pair.left}\t{pair.right}\n".encode("utf8"))
        return h.hexdigest()[:16]


def _capped_pairs(
    label: str, names: Sequence[str], cap: int, rng: random.Random
) -> List[SynonymPair]:
    combos = list(combinations(names, 2))
    if len(combos) > cap:
        combos = rng.sample(combos, cap)
    return [SynonymPair(label, a, b) for a, b in combos]


def _check_cap(max_pairs_per_concept: int) -> None:
    check_int_option("max_pairs_per_concept", max_pairs_per_concept)


def kb_pairs(
    kb: KnowledgeBase, *, max_pairs_per_concept: int = 50, seed: int = 0
) -> PairSet:
    """All pairs of distinct names (case-insensitively deduplicated, as
    ``Concept.names()``) within each concept, at most ``max_pairs_per_concept`` per
    concept (a seeded sample), shuffled with ``seed``. Single-name concepts give no
    pair and are counted in ``n_single_name``."""
    _check_cap(max_pairs_per_concept)
    rng = random.Random(seed)
    pairs: List[SynonymPair] = []
    single = 0
    for concept in kb:
        names = concept.names()
        if len(names) < 2:
            single += 1
            continue
        pairs.extend(_capped_pairs(concept.concept_id, names, max_pairs_per_concept, rng))
    rng.shuffle(pairs)
    result = PairSet(pairs, source=f"kb {kb.meta.get('name', 'kb')!r}", n_single_name=single)
    _check_not_empty(result)
    return result


def synonym_queries(kb: KnowledgeBase, n: int, *, seed: int = 0) -> List[Tuple[str, str]]:
    """``n`` (name, concept id) pairs drawn without replacement (seeded) from the names
    of the concepts that have at least two distinct names (the KB's alias table), in a
    seeded order: vocabulary names to train as queries against their concepts' other
    names. All such names when fewer than ``n``; ``n = 0`` gives none."""
    n = check_int_option("synonym_queries", n, minimum=0)
    if n == 0:
        return []
    names, rows = kb.alias_table()
    rows = numpy.asarray(rows)
    eligible = numpy.flatnonzero(numpy.bincount(rows, minlength=len(kb))[rows] > 1)
    picked = random.Random(seed).sample(eligible.tolist(), min(n, len(eligible)))
    return [(names[i], kb.concept_id_at(int(rows[i]))) for i in picked]


def read_pairs_tsv(
    path: PathLike, *, max_pairs_per_concept: Optional[int] = None, seed: int = 0
) -> PairSet:
    """A NeMo pairs TSV ``ID<TAB>synonym1<TAB>synonym2``. Pairs whose two names are the
    same ignoring case and whitespace, and repeated pairs, are dropped; the rest are
    shuffled with ``seed`` (and capped per concept when ``max_pairs_per_concept``)."""
    path = Path(path)
    expected = "3 tab-separated fields: ID<TAB>synonym1<TAB>synonym2"
    by_label: Dict[str, List[SynonymPair]] = {}
    seen = set()
    same = 0
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            problem = f"{len(fields)} field(s)" if len(fields) != 3 else "an empty field"
            raise malformed_line(path, number, problem, expected, line)
        label, left, right = (clean_name(f) for f in fields)
        key = (label, *sorted((name_key(left), name_key(right))))
        if key[1] == key[2]:
            same += 1
            continue
        if key in seen:
            continue
        seen.add(key)
        by_label.setdefault(label, []).append(SynonymPair(label, left, right))
    rng = random.Random(seed)
    pairs: List[SynonymPair] = []
    for label_pairs in by_label.values():
        if max_pairs_per_concept is not None:
            _check_cap(max_pairs_per_concept)
            if len(label_pairs) > max_pairs_per_concept:
                label_pairs = rng.sample(label_pairs, max_pairs_per_concept)
        pairs.extend(label_pairs)
    rng.shuffle(pairs)
    result = PairSet(pairs, source=str(path), skipped={"same name twice": same} if same else {})
    _check_not_empty(result)
    return result


def mention_pairs(
    corpus: PathLike,
    kb: KnowledgeBase,
    *,
    types: Optional[Sequence[str]] = None,
    max_pairs_per_concept: int = 50,
    seed: int = 0,
) -> PairSet:
    """SapBERT's fine-tuning pairs: (gold mention text, each name of its gold concept)
    for every distinct (mention, concept) of the corpus, at most
    ``max_pairs_per_concept`` names per mention (a seeded sample), shuffled."""
    _check_cap(max_pairs_per_concept)
    mentions, skipped = labelled_mentions(corpus, kb, types=types)
    rng = random.Random(seed)
    pairs: List[SynonymPair] = []
    for text, concept_id in dict.fromkeys(mentions):
        names = [n for n in kb[concept_id].names() if name_key(n) != name_key(text)]
        if len(names) > max_pairs_per_concept:
            names = rng.sample(names, max_pairs_per_concept)
        pairs.extend(SynonymPair(concept_id, text, name) for name in names)
    rng.shuffle(pairs)
    result = PairSet(pairs, source=str(corpus), skipped=skipped)
    _check_not_empty(result)
    return result


def merge_pair_sets(sets: Sequence[PairSet], *, seed: int = 0) -> PairSet:
    """The union of several pair sets, shuffled together with ``seed``."""
    pairs = [pair for s in sets for pair in s.pairs]
    random.Random(seed).shuffle(pairs)
    skipped: Dict[str, int] = {}
    for s in sets:
        for key, value in s.skipped.items():
            skipped[key] = skipped.get(key, 0) + value
    return PairSet(
        pairs,
        source=" + ".join(s.source for s in sets),
        n_single_name=sum(s.n_single_name for s in sets),
        skipped=skipped,
    )


def split_validation(
    pair_set: PairSet, *, fraction: float, seed: int = 0
) -> Tuple[PairSet, PairSet]:
    """Hold out the pairs of a seeded ``fraction`` of the concepts (whole concepts, so
    validation measures generalisation to unseen concepts)."""
    if not 0 <= fraction < 1:
        raise SapelError(Errors.E602.format(name="validation_fraction", value=fraction))
    labels = sorted(pair_set.labels)
    n_val = int(round(len(labels) * fraction))
    held = set(random.Random(seed).sample(labels, n_val)) if n_val else set()
    train = [p for p in pair_set.pairs if p.label not in held]
    val = [p for p in pair_set.pairs if p.label in held]
    return (
        PairSet(train, pair_set.source, pair_set.n_single_name, dict(pair_set.skipped)),
        PairSet(val, f"{pair_set.source} (validation)"),
    )


def _check_not_empty(pair_set: PairSet) -> None:
    if not pair_set.pairs:
        raise SapelError(
            Errors.E601.format(
                source=pair_set.source,
                single=pair_set.n_single_name,
                skipped=format_examples(f"{k}: {v}" for k, v in pair_set.skipped.items()) or "none",
            )
        )
    if len(pair_set.labels) < 2:
        raise SapelError(Errors.E603.format(source=pair_set.source, count=len(pair_set.labels)))


def warn_skipped(pair_set: PairSet) -> None:
    """One warning for single-name concepts and other skipped input, if any."""
    if pair_set.n_single_name or pair_set.skipped:
        details = ", ".join(f"{k}: {v}" for k, v in pair_set.skipped.items()) or "none"
        warnings.warn(
            Warnings.W600.format(
                source=pair_set.source, single=pair_set.n_single_name, details=details
            ),
            UserWarning,
            stacklevel=2,
        )


def texts_of(pairs: Iterable[SynonymPair]) -> List[str]:
    """Left then right names of ``pairs`` (the batch layout the loss sees)."""
    pairs = list(pairs)
    return [p.left for p in pairs] + [p.right for p in pairs]
