"""Evidence from labelled mentions, kept with the KB: how often a (normalised) mention
string was annotated with each concept, how often each concept was gold at all, and
which names of a concept came from training mentions rather than from the vocabulary.

spaCy's ``InMemoryLookupKB`` keeps a ``prior_prob`` per alias for the same reason: when
several concepts carry the same name, the one the annotators chose for that string
should win, not the one that comes first in the vocabulary file."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .names import name_key

#: The sidecar file of a KB directory (format version 3) that holds the priors.
PRIORS_FILE = "priors.json"


class Priors:
    """Counts of labelled mentions: per (``name_key(mention)``, concept id) and per
    concept id; ``sources`` says which corpora they came from."""

    def __init__(self) -> None:
        self.mention_counts: Dict[str, Dict[str, int]] = {}
        self.concept_counts: Dict[str, int] = {}
        self.n_mentions = 0
        self.sources: List[str] = []
        #: concept id -> how many of its last names ``add_aliases`` added (training
        #: aliases), the rest being the vocabulary's own names
        self.added_names: Dict[str, int] = {}
        self._by_concept: Optional[Dict[str, Dict[str, int]]] = None

    def __bool__(self) -> bool:
        return self.n_mentions > 0

    def __repr__(self) -> str:
        return (
            f"Priors(n_mentions={self.n_mentions}, n_strings={len(self.mention_counts)}, "
            f"n_concepts={len(self.concept_counts)})"
        )

    def add(self, mentions: Iterable[Tuple[str, str]], *, source: str) -> int:
        """Count ``(mention text, concept id)`` pairs; returns how many were counted."""
        added = 0
        for text, concept_id in mentions:
            key = name_key(text)
            if not key:
                continue
            per_string = self.mention_counts.setdefault(key, {})
            per_string[concept_id] = per_string.get(concept_id, 0) + 1
            self.concept_counts[concept_id] = self.concept_counts.get(concept_id, 0) + 1
            added += 1
        self.n_mentions += added
        self._by_concept = None
        if source not in self.sources:
            self.sources.append(source)
        return added

    def mention_count(self, text: str, concept_id: str) -> int:
        """How often ``text`` (any spelling with the same ``name_key``) was annotated
        with ``concept_id``."""
        return self.mention_counts.get(name_key(text), {}).get(concept_id, 0)

    def mention_prior(self, text: str, concept_id: str) -> float:
        """P(concept | mention string) from the counts; 0.0 for an unseen string."""
        per_string = self.mention_counts.get(name_key(text))
        if not per_string:
            return 0.0
        return per_string.get(concept_id, 0) / sum(per_string.values())

    def concept_count(self, concept_id: str) -> int:
        """How often ``concept_id`` was the gold concept of a labelled mention."""
        return self.concept_counts.get(concept_id, 0)

    def log_concept_count(self, concept_id: str) -> float:
        return math.log1p(self.concept_counts.get(concept_id, 0))

    def strings_of(self, concept_id: str) -> Dict[str, int]:
        """The mention strings (name keys) annotated with ``concept_id`` and their counts."""
        if self._by_concept is None:
            by_concept: Dict[str, Dict[str, int]] = {}
            for key, counts in self.mention_counts.items():
                for cid, count in counts.items():
                    by_concept.setdefault(cid, {})[key] = count
            self._by_concept = by_concept
        return dict(self._by_concept.get(concept_id, {}))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "n_mentions": self.n_mentions,
            "sources": list(self.sources),
            "mention_counts": self.mention_counts,
            "concept_counts": self.concept_counts,
            "added_names": self.added_names,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Priors":
        """The inverse of :meth:`to_dict`; a ValueError says what does not fit."""
        priors = cls()
        mention_counts = data["mention_counts"]
        concept_counts = data["concept_counts"]
        if not isinstance(mention_counts, dict) or not isinstance(concept_counts, dict):
            raise ValueError("mention_counts and concept_counts must be objects")
        for key, counts in mention_counts.items():
            if not isinstance(counts, dict) or not all(
                isinstance(v, int) and v > 0 for v in counts.values()
            ):
                raise ValueError(f"the counts of mention {key!r} are not positive integers")
        if not all(isinstance(v, int) and v >= 0 for v in concept_counts.values()):
            raise ValueError("concept counts must be integers >= 0")
        priors.mention_counts = {k: dict(v) for k, v in mention_counts.items()}
        priors.concept_counts = dict(concept_counts)
        priors.n_mentions = int(data["n_mentions"])
        priors.sources = [str(s) for s in data.get("sources", [])]
        added_names = data.get("added_names", {})
        if not isinstance(added_names, dict) or not all(
            isinstance(v, int) and v >= 0 for v in added_names.values()
        ):
            raise ValueError("added_names must map concept ids to integers >= 0")
        priors.added_names = dict(added_names)
        return priors
