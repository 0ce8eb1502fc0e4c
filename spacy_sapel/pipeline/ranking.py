"""Ordering the retrieved candidates of a document's mentions: short forms through
their long forms, ties decided by the KB's priors, an optional learned reranker and
one sense per document. The linker retrieves; this module decides the order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

from ..errors import Errors, SapelError
from ..kb.names import name_key
from ..kb.priors import Priors
from .linker_kb import Candidates, LinkerKB

#: How a short form defined in the document ("long form (SF)") is linked:
#: "merge" keeps each concept's better score of the two searches (the first policy);
#: "long_form_first" puts the long form's candidates first and the short form's own
#: after them (scispaCy links the long form only).
SHORT_FORM_POLICIES = ("merge", "long_form_first")
#: Scores closer than this count as equal (a name shared by several concepts).
TIE_TOLERANCE = 1e-5


@dataclass
class Mention:
    """One linkable entity with what retrieval found for it."""

    span: Span
    text: str
    candidates: Candidates
    #: the long form of a short form defined in the document, and its candidates
    long_text: Optional[str] = None
    long_candidates: Optional[Candidates] = None


#: ``reranker(linker_kb, doc, mentions, pools) -> pools reordered``; the linker also
#: calls its optional ``prepare(linker_kb, mentions)`` once per batch of docs, before
#: ranking them one by one
Reranker = Callable[[LinkerKB, Doc, List[Mention], List[Candidates]], List[Candidates]]


def check_short_forms(value: str) -> None:
    if value not in SHORT_FORM_POLICIES:
        raise SapelError(
            Errors.E350.format(value=value, options=", ".join(SHORT_FORM_POLICIES))
        )


def rank_doc(
    linker_kb: LinkerKB,
    doc: Doc,
    mentions: List[Mention],
    *,
    top_k: int,
    priors: bool,
    short_forms: str,
    one_sense_per_doc: bool,
    reranker: Optional[Reranker] = None,
) -> List[Candidates]:
    """The final candidate list (best first, ``top_k`` long) of each mention of ``doc``."""
    kb_priors = linker_kb.kb.priors if priors else None
    pools = [
        _pool(m, short_forms=short_forms, priors=kb_priors or None) for m in mentions
    ]
    if reranker is not None and mentions:
        pools = reranker(linker_kb, doc, mentions, pools)
    if one_sense_per_doc:
        pools = one_sense(mentions, pools)
    return [pool[:top_k] for pool in pools]


def _pool(mention: Mention, *, short_forms: str, priors: Optional[Priors]) -> Candidates:
    """The mention's candidates after the short-form policy, ties broken by priors."""
    own = break_ties(mention.candidates, [mention.text], priors)
    if mention.long_candidates is None:
        return own
    texts = [mention.long_text or "", mention.text]
    if short_forms == "long_form_first":
        first = break_ties(mention.long_candidates, texts, priors)
        seen = {cid for cid, _ in first}
        return first + [(cid, score) for cid, score in own if cid not in seen]
    return break_ties(best_of(mention.candidates, mention.long_candidates), texts, priors)


def best_of(*lists: Candidates) -> Candidates:
    """The concepts of several candidate lists, each with its best score, best first
    (a stable sort: equal scores keep the order they were first seen in)."""
    best: Dict[str, float] = {}
    for candidates in lists:
        for concept_id, score in candidates:
            if score > best.get(concept_id, float("-inf")):
                best[concept_id] = score
    return sorted(best.items(), key=lambda item: -item[1])


def break_ties(
    candidates: Sequence[Tuple[str, float]], texts: Sequence[str], priors: Optional[Priors]
) -> Candidates:
    """``candidates`` best first; among scores within :data:`TIE_TOLERANCE`, the
    concept annotated more often with one of ``texts`` first, then the one that was
    gold more often, then the retrieval order (KB order). Without priors, the
    retrieval order stands."""
    ordered = sorted(candidates, key=lambda item: -item[1])
    if not priors or len(ordered) < 2:
        return list(ordered)
    keys = [name_key(t) for t in texts if t]
    result: Candidates = []
    i = 0
    while i < len(ordered):
        j = i + 1
        while j < len(ordered) and ordered[i][1] - ordered[j][1] <= TIE_TOLERANCE:
            j += 1
        group = ordered[i:j]
        if len(group) > 1:
            group.sort(
                key=lambda item: (
                    -sum(priors.mention_counts.get(k, {}).get(item[0], 0) for k in keys),
                    -priors.concept_count(item[0]),
                )
            )
        result.extend(group)
        i = j
    return result


def one_sense(mentions: List[Mention], pools: List[Candidates]) -> List[Candidates]:
    """Identical mention strings of one document get one concept: the one with the
    highest summed score over their candidate lists goes first in each list that
    holds it."""
    groups: Dict[str, List[int]] = {}
    for i, mention in enumerate(mentions):
        groups.setdefault(name_key(mention.text), []).append(i)
    pools = list(pools)
    for members in groups.values():
        if len(members) < 2:
            continue
        support: Dict[str, float] = {}
        for i in members:
            for concept_id, score in pools[i]:
                support[concept_id] = support.get(concept_id, 0.0) + score
        if not support:
            continue
        best = max(support, key=lambda cid: (support[cid], -_first_rank(cid, pools, members)))
        for i in members:
            pool = pools[i]
            hit = next((item for item in pool if item[0] == best), None)
            if hit is not None and pool[0][0] != best:
                pools[i] = [hit] + [item for item in pool if item[0] != best]
    return pools


def _first_rank(concept_id: str, pools: List[Candidates], members: List[int]) -> int:
    return min(
        (rank for i in members for rank, (cid, _) in enumerate(pools[i]) if cid == concept_id),
        default=len(pools),
    )
