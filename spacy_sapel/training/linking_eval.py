"""Linking evaluation on gold mentions, as the NeMo entity-linking tutorial and the
SapBERT paper measure it: read the queries (mention, gold id set) of a PubTator corpus
or a NeMo queries TSV, and score an encoder's nearest KB names at k."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from ..encoder import SapEncoder
from ..kb import KnowledgeBase
from ..kb.ids import kb_id_set
from ..pipeline.linker_kb import Embedder, LinkerKB
from ..pipeline.ranking import break_ties
from ..util import iter_lines, malformed_line
from .evaluate import accuracy_at_k, error_breakdown
from .pubtator import gold_id_set, is_pubtator, read_pubtator

Query = Tuple[str, FrozenSet[str]]


def read_queries(path: Path, *, types: Optional[Sequence[str]] = None) -> List[Query]:
    """Gold mentions with their gold id sets: a PubTator corpus (detected by its
    ``pmid|t|`` lines) or a NeMo queries TSV ``ID<TAB>mention``. Mentions without an
    id (``-1``) are left out, as in the published evaluations."""
    path = Path(path)
    queries: List[Query] = []
    if is_pubtator(path):
        for doc in read_pubtator(path, types=list(types) if types else None):
            for mention in doc.mentions:
                gold = gold_id_set(mention)
                if gold:
                    queries.append((mention.text, gold))
        return queries
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1].strip():
            raise malformed_line(
                path, number, f"{len(fields)} field(s)",
                "2 tab-separated fields: ID<TAB>mention (or a PubTator corpus)", line,
            )
        gold = kb_id_set(fields[0])
        if gold:
            queries.append((fields[1].strip(), gold))
    return queries


def evaluate_encoder(
    kb: KnowledgeBase,
    encoder: SapEncoder,
    queries: Sequence[Query],
    *,
    ks: Sequence[int] = (1, 5),
    embed: Optional[Embedder] = None,
) -> Tuple[Dict[int, float], Dict[str, int]]:
    """Embed the KB's names with ``encoder`` (or ``embed``: vectors computed once for
    several KBs), search the query mentions (exact flat index, the KB's priors
    breaking ties) and score with :func:`accuracy_at_k`; also the
    :func:`error_breakdown` of the mentions wrong at 1."""
    linker_kb = LinkerKB.build(kb, encoder, index_type="flat", embed=embed)
    texts = [text for text, _ in queries]
    candidates = linker_kb.search(texts, top_k=max(ks))
    if kb.priors:
        candidates = [break_ties(c, [t], kb.priors) for c, t in zip(candidates, texts)]
    gold = [gold for _, gold in queries]
    return accuracy_at_k(candidates, gold, kb, ks=ks), error_breakdown(candidates, gold, kb, k=max(ks))
