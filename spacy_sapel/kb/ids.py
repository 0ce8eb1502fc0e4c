"""Concept ids as corpora and vocabularies write them: composite ids, the ``-1`` of
"no id", prefixes that evaluations ignore, and the lookup from any id of a concept
(primary or alternate) to the concept."""
from __future__ import annotations

import re
from typing import Dict, FrozenSet, Iterable, List

from .knowledge_base import KnowledgeBase

#: the id of a mention that names no concept (PubTator, NeMo queries)
NO_ID = "-1"


def split_ids(ids: str) -> List[str]:
    """Composite ids are joined by ``|`` or ``+``; ``-1`` means no id."""
    return [i.strip() for i in re.split(r"[|+]", ids) if i.strip() and i.strip() != NO_ID]


def normalize_id(concept_id: str) -> str:
    """The comparison form the published evaluations use: surrounding space and a
    ``MESH:`` prefix (any case) removed; other prefixes are kept (the KB readers write
    OMIM ids as ``OMIM:n`` already)."""
    concept_id = concept_id.strip()
    if concept_id.upper().startswith("MESH:"):
        return concept_id[5:]
    return concept_id


def normalized_ids(ids: Iterable[str]) -> FrozenSet[str]:
    """The set of ``ids`` in :func:`normalize_id` form."""
    return frozenset(normalize_id(i) for i in ids)


def kb_id_set(kb_id: str) -> FrozenSet[str]:
    """The gold id set of an entity whose ``kb_id_`` holds a mention's ids joined by
    ``|`` or ``+``."""
    return normalized_ids(split_ids(kb_id))


def concept_index(kb: KnowledgeBase) -> Dict[str, str]:
    """Normalised id (primary or alternate) -> concept id; primary ids win."""
    index: Dict[str, str] = {}
    for concept in kb:
        index[normalize_id(concept.concept_id)] = concept.concept_id
    for concept in kb:
        for alt in concept.alt_ids:
            index.setdefault(normalize_id(alt), concept.concept_id)
    return index
