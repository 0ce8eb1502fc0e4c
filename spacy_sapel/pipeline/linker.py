"""The ``sapel_linker`` component: links ``doc.ents`` to knowledge-base concepts by
nearest-neighbour search over SAP-encoder embeddings of the concepts' names."""

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.util import (
    SimpleFrozenList,
    from_bytes,
    from_disk,
    minibatch,
    to_bytes,
    to_disk,
)

from ..encoder import SapEncoder
from ..errors import Errors
from ..index import DenseIndex
from ..kb import KnowledgeBase
from ..index.sparse import SparseIndex
from ..util import json_dumps, read_json, write_json
from .abbreviations import (
    find_abbreviations,
    install_abbreviation_extension,
    set_abbreviations,
    short_form_map,
)
from .linker_kb import SPARSE_PART, Candidates, LinkerKB, TypeSet

CANDIDATES_ATTR = "kb_candidates"
DEFAULT_CONFIG: Dict[str, Any] = {
    "top_k": 5,
    "threshold": 0.0,
    "labels": [],
    "batch_size": 128,
    "cache_size": 50_000,
    "abbreviations": True,
    "sparse_weight": 0.0,
    "type_filter": {},
    "scorer": {"@scorers": "sapel.linker_scorer.v1"},
}


def install_extensions() -> None:
    """Register ``Span._.kb_candidates`` once; safe to call from every linker."""
    if not Span.has_extension(CANDIDATES_ATTR):
        Span.set_extension(CANDIDATES_ATTR, default=None)


@Language.factory(
    "sapel_linker",
    requires=["doc.ents"],
    assigns=["token.ent_kb_id", f"span._.{CANDIDATES_ATTR}"],
    default_config=DEFAULT_CONFIG,
    default_score_weights={"nel_micro_f": 1.0, "nel_micro_p": None, "nel_micro_r": None},
)
def make_sapel_linker(
    nlp: Language,
    name: str,
    top_k: int,
    threshold: float,
    labels: List[str],
    batch_size: int,
    cache_size: int,
    abbreviations: bool,
    sparse_weight: float,
    type_filter: Dict[str, List[str]],
    scorer: Optional[Callable],
) -> "SapelLinker":
    return SapelLinker(
        nlp,
        name,
        top_k=top_k,
        threshold=threshold,
        labels=labels,
        batch_size=batch_size,
        cache_size=cache_size,
        abbreviations=abbreviations,
        sparse_weight=sparse_weight,
        type_filter=type_filter,
        scorer=scorer,
    )


class SapelLinker(Pipe):
    """Set ``ent.kb_id_`` and ``ent._.kb_candidates`` (``[(concept_id, score), ...]``,
    best first) for every entity whose label it links. A best score below
    ``threshold`` leaves ``kb_id_`` empty (NIL) but keeps the candidates.

    The candidates of the last ``cache_size`` distinct mention strings are kept in an
    LRU cache (a mention string always gets the same candidates from one KB), so
    repeated mentions across batches are neither encoded nor searched again.

    ``abbreviations``: find definitions such as "Wilson disease (WD)" in each doc
    (``doc._.abbreviations``) and link a short-form mention through its long form as
    well as by itself, keeping each concept's better score. ``sparse_weight``: fuse
    the dense score with a character n-gram score (hybrid search). ``type_filter``:
    entity label -> KB types its concepts must have, applied before the top-k.
    """

    def __init__(
        self,
        nlp: Language,
        name: str = "sapel_linker",
        *,
        top_k: int = 5,
        threshold: float = 0.0,
        labels: Sequence[str] = (),
        batch_size: int = 128,
        cache_size: int = 50_000,
        abbreviations: bool = True,
        sparse_weight: float = 0.0,
        type_filter: Optional[Dict[str, List[str]]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(Errors.E303.format(name="top_k", value=top_k))
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(Errors.E303.format(name="batch_size", value=batch_size))
        if not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise ValueError(Errors.E306.format(value=threshold))
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(Errors.E309.format(value=cache_size))
        if not isinstance(sparse_weight, (int, float)) or not 0.0 <= sparse_weight <= 1.0:
            raise ValueError(Errors.E310.format(value=sparse_weight))
        for label, allowed in (type_filter or {}).items():
            if not isinstance(allowed, (list, tuple)) or not all(isinstance(t, str) for t in allowed):
                raise ValueError(Errors.E312.format(value=allowed, label=label))
        self.vocab = nlp.vocab
        self.name = name
        self.cfg: Dict[str, Any] = {
            "top_k": top_k,
            "threshold": float(threshold),
            "labels": list(labels),
            "batch_size": batch_size,
            "cache_size": cache_size,
            "abbreviations": bool(abbreviations),
            "sparse_weight": float(sparse_weight),
            "type_filter": {label: list(types) for label, types in (type_filter or {}).items()},
        }
        self.scorer = scorer
        self.linker_kb: Optional[LinkerKB] = None
        self._cache: "OrderedDict[Tuple[str, TypeSet], Candidates]" = OrderedDict()
        self._cache_key: Tuple[Any, ...] = ()
        install_extensions()
        install_abbreviation_extension()

    # --- set-up -------------------------------------------------------------------
    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        kb_loader: Optional[Callable[[], LinkerKB]] = None,
    ) -> None:
        """Load the KB, encoder and index through ``kb_loader`` (a registered loader
        such as ``sapel.load_kb_dir.v1``, named in ``[initialize.components]``)."""
        if get_examples is not None:
            validate_get_examples(get_examples, "SapelLinker.initialize")
        if kb_loader is not None:
            self.set_kb(kb_loader)
        linker_kb = self._require_kb()
        if self.cfg["sparse_weight"] > 0 and linker_kb.sparse is None:
            linker_kb.add_sparse_index()

    def set_kb(self, kb_loader: Callable[[], LinkerKB]) -> None:
        """Give the linker its KB through a loader callable (as spaCy's EntityLinker)."""
        if not callable(kb_loader):
            raise ValueError(Errors.E307.format(name=self.name, value=kb_loader))
        linker_kb = kb_loader()
        if not isinstance(linker_kb, LinkerKB):
            raise ValueError(Errors.E308.format(name=self.name, type=type(linker_kb)))
        self.linker_kb = linker_kb

    def _require_kb(self) -> LinkerKB:
        if self.linker_kb is None:
            raise ValueError(Errors.E300.format(name=self.name))
        return self.linker_kb

    @property
    def kb(self) -> KnowledgeBase:
        """The concepts: look up names, types and definitions of a predicted id."""
        return self._require_kb().kb

    @property
    def encoder(self) -> SapEncoder:
        return self._require_kb().encoder

    @property
    def labels(self) -> List[str]:
        return list(self.cfg["labels"])

    # --- prediction ---------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    def _mentions(self, doc: Doc) -> List[Span]:
        labels = set(self.cfg["labels"])
        return [ent for ent in doc.ents if not labels or ent.label_ in labels]

    def predict(self, docs: Iterable[Doc]) -> List[List[Candidates]]:
        """Candidates for each linkable entity of each doc; all mentions of the batch
        are encoded together, identical strings once."""
        docs = list(docs)
        type_filter = {
            label: frozenset(types) for label, types in self.cfg["type_filter"].items()
        }
        queries: List[Tuple[str, TypeSet]] = []
        long_forms: List[Optional[Tuple[str, TypeSet]]] = []
        counts: List[int] = []
        for doc in docs:
            expansions = self._abbreviations(doc)
            mentions = self._mentions(doc)
            counts.append(len(mentions))
            for ent in mentions:
                text = _mention_text(ent)
                type_set = type_filter.get(ent.label_)
                queries.append((text, type_set))
                long_text = expansions.get(text)
                long_forms.append((long_text, type_set) if long_text else None)
        found = self._search(queries + [q for q in long_forms if q is not None])
        extra = iter(found[len(queries) :])
        merged = [
            cands if long is None else _merge(cands, next(extra), self.cfg["top_k"])
            for cands, long in zip(found[: len(queries)], long_forms)
        ]
        result, i = [], 0
        for n in counts:
            result.append(merged[i : i + n])
            i += n
        return result

    def _abbreviations(self, doc: Doc) -> Dict[str, str]:
        """Short form -> long form of the doc's abbreviation definitions (set on
        ``doc._.abbreviations``), when the ``abbreviations`` option is on."""
        if not self.cfg["abbreviations"]:
            return {}
        definitions = find_abbreviations(doc)
        set_abbreviations(doc, definitions)
        return short_form_map(definitions)

    def _search(self, queries: List[Tuple[str, TypeSet]]) -> List[Candidates]:
        """``LinkerKB.search`` through the LRU cache of (mention string, type filter)."""
        linker_kb = self._require_kb()
        cfg = self.cfg
        texts = [text for text, _ in queries]
        types = [type_set for _, type_set in queries]
        options = {
            "top_k": cfg["top_k"],
            "batch_size": cfg["batch_size"],
            "sparse_weight": cfg["sparse_weight"],
        }
        if cfg["cache_size"] == 0:
            return linker_kb.search(texts, types=types, **options)
        cache = self._cache
        key = (linker_kb, cfg["top_k"], cfg["sparse_weight"])
        if self._cache_key != key:
            cache.clear()
            self._cache_key = key
        known: Dict[Tuple[str, TypeSet], Candidates] = {}
        missing: List[Tuple[str, TypeSet]] = []
        for query in dict.fromkeys(queries):
            cands = cache.get(query)
            if cands is None:
                missing.append(query)
            else:
                cache.move_to_end(query)
                known[query] = cands
        if missing:
            found = linker_kb.search(
                [text for text, _ in missing], types=[t for _, t in missing], **options
            )
            known.update(zip(missing, found))
            cache.update(zip(missing, found))
            while len(cache) > cfg["cache_size"]:
                cache.popitem(last=False)
        return [known[query] for query in queries]

    def set_annotations(self, docs: Iterable[Doc], candidates: List[List[list]]) -> None:
        threshold = self.cfg["threshold"]
        for doc, doc_candidates in zip(docs, candidates):
            for ent, cands in zip(self._mentions(doc), doc_candidates):
                kb_id = cands[0][0] if cands and cands[0][1] >= threshold else ""
                for token in ent:
                    token.ent_kb_id_ = kb_id
                # extension values are keyed by the span's character offsets
                ent._.set(CANDIDATES_ATTR, [(cid, score) for cid, score in cands])

    # --- serialization ------------------------------------------------------------
    def to_disk(
        self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> None:
        """One key per part: ``cfg``, ``encoder``, ``kb``, ``index``. A linker without
        a KB (not initialized yet) writes its ``cfg`` only."""
        serialize: Dict[str, Callable] = {"cfg": lambda p: write_json(p, self.cfg)}
        if self.linker_kb is not None:
            serialize["encoder"] = self.linker_kb.encoder.to_disk
            serialize["kb"] = self.linker_kb.kb.to_disk
            serialize["index"] = self.linker_kb.index.to_disk
            if self.linker_kb.sparse is not None:
                serialize[SPARSE_PART] = self.linker_kb.sparse.to_disk
        to_disk(path, serialize, exclude)

    def from_disk(
        self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "SapelLinker":
        parts: Dict[str, Any] = {}

        def load_encoder(p: Path) -> None:
            parts["encoder"] = SapEncoder.from_disk(p)

        def load_index(p: Path) -> None:
            encoder = parts["encoder"]
            # the fingerprint (and runtime) is checked by LinkerKB
            parts["index"] = DenseIndex.from_disk(p, expected_dim=encoder.dim)

        deserialize = {
            "cfg": lambda p: self.cfg.update(read_json(p)),
            "encoder": load_encoder,
            "kb": lambda p: parts.__setitem__("kb", KnowledgeBase.from_disk(p)),
            "index": load_index,
            SPARSE_PART: lambda p: parts.__setitem__("sparse", SparseIndex.from_disk(p)),
        }
        if not (Path(path) / SPARSE_PART).exists():
            del deserialize[SPARSE_PART]
        if not (Path(path) / "encoder").exists():
            deserialize = {"cfg": deserialize["cfg"]}
        from_disk(path, deserialize, exclude)
        if parts:
            self.linker_kb = LinkerKB(**parts)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        serialize: Dict[str, Callable] = {"cfg": lambda: json_dumps(self.cfg)}
        if self.linker_kb is not None:
            serialize["encoder"] = self.linker_kb.encoder.to_bytes
            serialize["kb"] = self.linker_kb.kb.to_bytes
            serialize["index"] = self.linker_kb.index.to_bytes
            if self.linker_kb.sparse is not None:
                serialize[SPARSE_PART] = self.linker_kb.sparse.to_bytes
        return to_bytes(serialize, exclude)

    def from_bytes(
        self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "SapelLinker":
        parts: Dict[str, Any] = {}
        deserialize = {
            "cfg": lambda b: self.cfg.update(json.loads(b)),
            "encoder": lambda b: parts.__setitem__("encoder", SapEncoder.from_bytes(b)),
            "kb": lambda b: parts.__setitem__("kb", KnowledgeBase.from_bytes(b)),
            "index": lambda b: parts.__setitem__(
                "index",
                DenseIndex.from_bytes(
                    b,
                    expected_dim=parts["encoder"].dim,
                ),
            ),
            SPARSE_PART: lambda b: parts.__setitem__("sparse", SparseIndex.from_bytes(b)),
        }
        from_bytes(bytes_data, deserialize, exclude)
        if parts:
            self.linker_kb = LinkerKB(**parts)
        return self


def _merge(first: Candidates, second: Candidates, top_k: int) -> Candidates:
    """Candidates of a short form and of its long form: each concept's better score."""
    best: Dict[str, float] = {}
    for concept_id, score in (*first, *second):
        if score > best.get(concept_id, float("-inf")):
            best[concept_id] = score
    return sorted(best.items(), key=lambda item: -item[1])[:top_k]


def _mention_text(ent: Span) -> str:
    """The mention string as the encoder sees it: whitespace collapsed."""
    return " ".join(ent.text.split())
