"""Training a reranker on a labelled corpus, with candidates retrieved by the linker
itself, k-fold over documents.

Leakage: when the KB holds a training corpus's mentions as aliases and priors, each
training mention matches its own gold concept exactly, and a reranker trained on it
learns to trust exact matches and nothing else. So the documents are split into
``folds``; the examples of one fold are linked against the vocabulary plus the
aliases and priors of the *other* folds only, as unseen text will be."""
from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np
import spacy
from spacy.tokens import Doc
from tqdm import tqdm

from ..errors import Errors, SapelError
from ..index import DenseIndex
from ..kb import Concept, KnowledgeBase
from ..kb.augment import add_aliases_from_mentions
from ..kb.ids import concept_index, kb_id_set, normalize_id
from ..kb.knowledge_base import clean_name
from ..pipeline.linker_kb import Candidates, LinkerKB
from ..pipeline.ranking import Mention
from ..pipeline.rerankers import LinearReranker
from ..util import check_int_option

Example = Tuple[np.ndarray, np.ndarray]


def train_reranker(
    reranker: LinearReranker,
    linker_kb: LinkerKB,
    docs: Sequence[Doc],
    *,
    linker_config: Optional[Dict[str, Any]] = None,
    folds: int = 5,
    show_progress: bool = False,
) -> Dict[str, Any]:
    """Fit ``reranker`` for ``linker_kb`` on the gold entities of ``docs`` (their
    ``kb_id_``), linked by a ``sapel_linker`` with ``linker_config`` against fold KBs:
    the vocabulary names of ``linker_kb`` plus, as aliases and priors, the gold
    mentions of the other folds. Document ``i`` is in fold ``i % folds``; a document
    whose text repeats an earlier one's is in that one's fold. Returns counts of what was
    used and skipped."""
    check_int_option("folds", folds, minimum=2)
    # identical documents (an abstract a corpus holds twice, or two corpora share)
    # share a fold: a copy in another fold would hand a document its own mentions
    first: Dict[str, int] = {}
    fold_of = [first.setdefault(doc.text, i) % folds for i, doc in enumerate(docs)]
    kb = linker_kb.kb
    index = concept_index(kb)
    per_doc: List[List[Tuple[str, str, bool]]] = []
    report: Dict[str, Any] = {"mentions": 0, "no id": 0, "id not in the KB": 0}
    for doc in docs:
        labelled = []
        for ent in doc.ents:
            ids = kb_id_set(ent.kb_id_)
            known = list(dict.fromkeys(index[i] for i in sorted(ids) if i in index))
            if not known:
                report["id not in the KB" if ids else "no id"] += 1
                continue
            # as build-kb: single-id mentions become aliases, every id counts as a prior
            labelled.extend((clean_name(ent.text), cid, len(known) == 1) for cid in known)
            report["mentions"] += 1
        per_doc.append(labelled)
    base = _vocabulary_concepts(kb)
    vectors = _NameVectors(linker_kb)
    examples: List[Example] = []
    counts = {"gold not retrieved": 0, "one candidate": 0}
    id_sets: Dict[str, FrozenSet[str]] = {}
    for fold in tqdm(range(folds), desc="reranker folds", disable=not show_progress):
        held = [i for i in range(len(docs)) if fold_of[i] == fold]
        if not held:
            continue
        others = [m for i, labelled in enumerate(per_doc) if fold_of[i] != fold for m in labelled]
        fold_kb = KnowledgeBase.from_concepts(base, name=f"{kb.meta.get('name')} fold {fold}")
        add_aliases_from_mentions(
            fold_kb, [(text, cid) for text, cid, single in others if single], source=f"fold {fold}"
        )
        fold_kb.add_priors([(text, cid) for text, cid, _ in others], source=f"fold {fold}")
        fold_linker_kb = vectors.linker_kb(fold_kb, sparse=(linker_config or {}).get("sparse_weight", 0.0) > 0)

        def collect(lkb: LinkerKB, doc: Doc, mentions: List[Mention], pools: List[Candidates]):
            for mention, pool, x in zip(mentions, pools, reranker.featurize(lkb, doc, mentions, pools)):
                gold = kb_id_set(mention.span.kb_id_)
                if not gold:
                    continue
                right = np.array([bool(_ids(lkb.kb, cid, id_sets) & gold) for cid, _ in pool])
                if not right.any():
                    counts["gold not retrieved"] += 1
                elif len(pool) < 2:
                    counts["one candidate"] += 1
                else:
                    examples.append((x, right))
            return pools

        collect.prepare = reranker.precompute  # type: ignore[attr-defined]
        nlp = spacy.blank("en")
        linker = nlp.add_pipe("sapel_linker", config={**(linker_config or {}), "reranker": None})
        linker.reranker = collect
        linker.set_kb(lambda: fold_linker_kb)
        copies = [Doc(docs[i].vocab).from_bytes(docs[i].to_bytes()) for i in held]
        for _ in nlp.pipe(copies, batch_size=64):
            pass
    if not examples:
        raise SapelError(
            Errors.E355.format(source=f"{len(docs)} documents", problem=f"{report}, {counts}")
        )
    loss = reranker.fit(examples)
    reranker.set_target(linker_kb)
    return {**report, **counts, "examples": len(examples), "loss": round(loss, 4)}


def _ids(kb: KnowledgeBase, concept_id: str, cache: Dict[str, FrozenSet[str]]) -> FrozenSet[str]:
    ids = cache.get(concept_id)
    if ids is None:
        ids = frozenset(normalize_id(i) for i in kb.id_set(concept_id))
        cache[concept_id] = ids
    return ids


def _vocabulary_concepts(kb: KnowledgeBase) -> List[Concept]:
    """The KB's concepts with the vocabulary's names only (without the names that
    ``add_aliases`` added, e.g. training mentions)."""
    added = kb.priors.added_names
    concepts = []
    for concept in kb:
        names = concept.names()
        n_vocab = len(names) - added.get(concept.concept_id, 0)
        concepts.append(
            Concept(
                concept.concept_id, names[0], names[1:n_vocab], list(concept.types),
                concept.definition, list(concept.alt_ids),
            )
        )
    return concepts


class _NameVectors:
    """Embeddings of names, taken from the flat index of a LinkerKB where it can
    (no second encoding of the vocabulary), encoded otherwise; each name once."""

    def __init__(self, linker_kb: LinkerKB) -> None:
        self.encoder = linker_kb.encoder
        self.rows: Dict[str, int] = {}
        self.blocks: List[np.ndarray] = []
        names = linker_kb.kb.alias_table()[0]
        faiss_index = linker_kb.index.faiss_index
        if linker_kb.index.index_type == "flat" and faiss_index is not None:
            self._add(names, faiss_index.reconstruct_n(0, faiss_index.ntotal))

    def _add(self, names: Sequence[str], vectors: np.ndarray) -> None:
        offset = sum(len(b) for b in self.blocks)
        self.blocks.append(np.asarray(vectors, dtype=np.float32))
        for i, name in enumerate(names):
            self.rows.setdefault(name, offset + i)

    def linker_kb(self, kb: KnowledgeBase, *, sparse: bool) -> LinkerKB:
        names = kb.alias_table()[0]
        missing = list(dict.fromkeys(n for n in names if n not in self.rows))
        if missing:
            self._add(missing, self.encoder.encode(missing))
        table = np.concatenate(self.blocks) if len(self.blocks) > 1 else self.blocks[0]
        self.blocks = [table]
        index = DenseIndex(index_type="flat")
        index.build(table[[self.rows[n] for n in names]], fingerprint=self.encoder.fingerprint)
        linker_kb = LinkerKB(encoder=self.encoder, kb=kb, index=index)
        if sparse:
            linker_kb.add_sparse_index()
        return linker_kb
