"""Knowledge-base augmentation from labelled mentions: BioSyn's "train dictionary"
(gold mention strings as aliases of their concepts). The mentions come from a corpus
reader (:func:`spacy_sapel.training.mentions.labelled_mentions`)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Set, Tuple

from .knowledge_base import KnowledgeBase, name_key


def add_aliases_from_mentions(
    kb: KnowledgeBase, mentions: Sequence[Tuple[str, str]], *, source: str
) -> int:
    """Add ``(mention text, concept id)`` pairs as aliases: only strings that the pairs
    link to one concept become its aliases. Recorded in ``kb.meta["alias_sources"]``
    under ``source``; returns the number of new names."""
    by_key: Dict[str, Set[str]] = {}
    for text, concept_id in mentions:
        by_key.setdefault(name_key(text), set()).add(concept_id)
    per_concept: Dict[str, List[str]] = {}
    for text, concept_id in mentions:
        if len(by_key[name_key(text)]) == 1:
            per_concept.setdefault(concept_id, []).append(text)
    added = 0
    for concept_id, texts in per_concept.items():
        added += kb.add_aliases(concept_id, texts, source=source)
    kb.meta["alias_sources"].setdefault(source, 0)
    return added
