"""Labelled mentions of a PubTator corpus resolved against a knowledge base: the
(mention, concept) pairs behind SAP fine-tuning, training mentions as KB aliases
(BioSyn's "train dictionary") and the KB's priors."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..kb import KnowledgeBase
from ..kb.augment import add_aliases_from_mentions
from ..kb.ids import concept_index
from ..kb.knowledge_base import clean_name
from ..util import PathLike
from .pubtator import gold_id_set, read_pubtator


def labelled_mentions(
    corpus: PathLike,
    kb: KnowledgeBase,
    *,
    types: Optional[Sequence[str]] = None,
    composites: bool = False,
) -> Tuple[List[Tuple[str, str]], Dict[str, int]]:
    """(mention text, concept id) for the gold mentions of a PubTator corpus with
    exactly one id that the KB knows, and counts of the mentions skipped and why.
    With ``composites``, a mention with several ids gives one pair per id the KB
    knows ("breast and ovarian cancer" names both)."""
    index = concept_index(kb)
    found: List[Tuple[str, str]] = []
    skipped = {"composite or no id": 0, "no id": 0, "id not in the KB": 0}
    for doc in read_pubtator(Path(corpus), types=list(types) if types else None):
        for mention in doc.mentions:
            ids = gold_id_set(mention)
            if not ids or (len(ids) > 1 and not composites):
                skipped["no id" if composites else "composite or no id"] += 1
                continue
            known = list(dict.fromkeys(index[i] for i in sorted(ids) if i in index))
            if not known:
                skipped["id not in the KB"] += 1
                continue
            text = clean_name(mention.text)
            if text:
                found.extend((text, concept_id) for concept_id in known)
    return found, {k: v for k, v in skipped.items() if v}


def add_mention_aliases(
    kb: KnowledgeBase,
    corpus: PathLike,
    *,
    types: Optional[Sequence[str]] = None,
    source: Optional[str] = None,
) -> int:
    """BioSyn's "train dictionary": add the gold mention strings of a labelled corpus
    as aliases of their gold concepts. Only unambiguous mentions count: a single id
    that the KB knows, and a string that the corpus never links to another concept.
    Recorded in ``kb.meta["alias_sources"]`` under ``source``; returns the new names."""
    mentions, _ = labelled_mentions(corpus, kb, types=types)
    return add_aliases_from_mentions(kb, mentions, source=source or f"train_mentions:{corpus}")


def add_mention_priors(
    kb: KnowledgeBase,
    corpus: PathLike,
    *,
    types: Optional[Sequence[str]] = None,
    source: Optional[str] = None,
) -> Tuple[int, Dict[str, int]]:
    """Count the gold mentions of a labelled corpus as the KB's priors (per mention
    string and concept, and per concept; see :class:`~spacy_sapel.kb.priors.Priors`).
    A composite mention counts for each of its ids. Returns the number of (mention,
    concept) pairs counted and the mentions skipped, by reason (no id; no id that
    the KB knows)."""
    mentions, skipped = labelled_mentions(corpus, kb, types=types, composites=True)
    counted = kb.add_priors(mentions, source=source or f"train_mentions:{corpus}")
    return counted, skipped
