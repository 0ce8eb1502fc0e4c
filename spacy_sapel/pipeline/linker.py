"""The ``sapel_linker`` component: links ``doc.ents`` to knowledge-base concepts by
nearest-neighbour search over SAP-encoder embeddings of the concepts' names."""

import warnings
import logging
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, Set, Tuple

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.util import (
    SimpleFrozenList,
    from_dict,
    minibatch,
    to_dict,
    to_disk,
)

from ..encoder import SapEncoder
from ..errors import Errors, IndexLoadError, SapelError, Warnings
from ..kb import KnowledgeBase
from ..kb.knowledge_base import format_examples
from ..util import check_int_option, json_dumps, write_json
from .abbreviations import (
    collect_abbreviations,
    implicit_long_forms,
    install_abbreviation_extension,
    set_abbreviations,
    short_form_map,
)
from .linker_kb import META_FILE, META_PART, PARTS, SPARSE_PART, Candidates, LinkerKB, TypeSet
from .ranking import Mention, best_of, check_short_forms, rank_doc
from .spelling import american_spelling

logger = logging.getLogger("spacy_sapel")
RERANKER_PART = "reranker"

CANDIDATES_ATTR = "kb_candidates"
# scispaCy's name for the same [(concept_id, score), ...] list
SCISPACY_CANDIDATES_ATTR = "kb_ents"
# where the candidates are stored: msgpack (Doc.to_bytes, DocBin, nlp.pipe with
# n_process > 1) gives tuples back as lists, so the public attribute reads through a
# getter that always returns a list of (concept_id, score) tuples
CANDIDATES_DATA_ATTR = "sapel_kb_candidates"
VETO_ACTIONS = ("drop", "relabel")
DEFAULT_CONFIG: Dict[str, Any] = {
    "top_k": 5,
    "threshold": 0.0,
    "labels": [],
    "batch_size": 128,
    "cache_size": 50_000,
    "abbreviations": True,
    "sparse_weight": 0.0,
    "type_filter": {},
    "veto_threshold": None,
    "veto_action": "drop",
    "veto_label": "UNGROUNDED",
    "priors": True,
    "short_forms": "long_form_first",
    "one_sense_per_doc": False,
    "implicit_short_forms": True,
    "spelling_variants": True,
    "rank_k": 10,
    "reranker": None,
    "scorer": {"@scorers": "sapel.linker_scorer.v1"},
}


def install_extensions() -> None:
    """Register ``Span._.kb_candidates`` once (a getter over stored data), and
    ``Span._.kb_ents`` (scispaCy's name, a read-only view of the same list, ``[]`` when
    not linked) if no one registered it: scispaCy's linker, wherever it is loaded,
    keeps its own. Safe to call from every linker."""
    if not Span.has_extension(CANDIDATES_DATA_ATTR):
        Span.set_extension(CANDIDATES_DATA_ATTR, default=None)
    if not Span.has_extension(CANDIDATES_ATTR):
        Span.set_extension(CANDIDATES_ATTR, getter=_get_candidates, setter=_set_candidates)
    if not Span.has_extension(SCISPACY_CANDIDATES_ATTR):
        Span.set_extension(SCISPACY_CANDIDATES_ATTR, getter=_kb_ents)


def _get_candidates(span: Span) -> Optional[Candidates]:
    stored = span._.get(CANDIDATES_DATA_ATTR)
    return None if stored is None else [(cid, score) for cid, score in stored]


def _set_candidates(span: Span, candidates: Optional[Iterable[Tuple[str, float]]]) -> None:
    stored = None if candidates is None else [(cid, score) for cid, score in candidates]
    span._.set(CANDIDATES_DATA_ATTR, stored)


def _kb_ents(span: Span) -> List[Tuple[str, float]]:
    return _get_candidates(span) or []


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
    veto_threshold: Optional[float],
    veto_action: Literal["drop", "relabel"],
    veto_label: str,
    priors: bool,
    short_forms: str,
    one_sense_per_doc: bool,
    implicit_short_forms: bool,
    spelling_variants: bool,
    rank_k: int,
    reranker: Optional[Callable],
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
        veto_threshold=veto_threshold,
        veto_action=veto_action,
        veto_label=veto_label,
        priors=priors,
        short_forms=short_forms,
        one_sense_per_doc=one_sense_per_doc,
        implicit_short_forms=implicit_short_forms,
        spelling_variants=spelling_variants,
        rank_k=rank_k,
        reranker=reranker,
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
    (``doc._.sapel_abbreviations``; scispaCy's ``doc._.abbreviations`` are read too)
    and link a short-form mention through its long form as
    well as by itself, keeping each concept's better score. ``sparse_weight``: fuse
    the dense score with a character n-gram score (hybrid search). ``type_filter``:
    entity label -> KB types its concepts must have, applied before the top-k.

    ``veto_threshold`` (off when None): linking as evidence for the NER. A linked
    entity whose best score is below it (or that has no candidate) is dropped from
    ``doc.ents`` (``veto_action="drop"``) or gets the label ``veto_label``
    (``"relabel"``) and no kb id. Choose it on development data (README, "Linking as
    evidence").
    Ordering (:mod:`.ranking`): ``priors`` breaks ties between concepts that match
    equally by the KB's counts of labelled mentions; ``short_forms`` ("merge" or
    "long_form_first") says how a defined short form uses its long form;
    ``one_sense_per_doc`` gives identical mention strings of a doc one concept;
    ``implicit_short_forms`` (with ``abbreviations``) links a short form that the doc
    never defines ("OAB") through another mention whose words it spells ("overactive
    bladder"), as if it were defined (not listed in ``doc._.sapel_abbreviations``);
    ``spelling_variants`` also searches a mention (and long form) in American
    spelling ("haematuria" -> "hematuria") and keeps each concept's better score;
    ``reranker`` (a registered reranker, None for none) reorders the ``rank_k``
    candidates retrieved per mention before the ``top_k`` are kept.
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
        veto_threshold: Optional[float] = None,
        veto_action: str = "drop",
        veto_label: str = "UNGROUNDED",
        priors: bool = True,
        short_forms: str = "long_form_first",
        one_sense_per_doc: bool = False,
        implicit_short_forms: bool = True,
        spelling_variants: bool = True,
        rank_k: int = 10,
        reranker: Optional[Callable] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        check_int_option("top_k", top_k)
        check_int_option("batch_size", batch_size)
        if not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise SapelError(Errors.E306.format(value=threshold))
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise SapelError(Errors.E309.format(value=cache_size))
        if not isinstance(sparse_weight, (int, float)) or not 0.0 <= sparse_weight <= 1.0:
            raise SapelError(Errors.E310.format(value=sparse_weight))
        for label, allowed in (type_filter or {}).items():
            if not isinstance(allowed, (list, tuple)) or not all(isinstance(t, str) for t in allowed):
                raise SapelError(Errors.E312.format(value=allowed, label=label))
        if veto_threshold is not None and (
            isinstance(veto_threshold, bool)
            or not isinstance(veto_threshold, (int, float))
            or not -1.0 <= veto_threshold <= 1.0
        ):
            raise SapelError(Errors.E330.format(value=veto_threshold))
        if veto_action not in VETO_ACTIONS:
            raise SapelError(Errors.E331.format(value=veto_action, options=VETO_ACTIONS))
        if not isinstance(veto_label, str) or not veto_label.strip():
            raise SapelError(Errors.E332.format(value=veto_label))
        check_int_option("rank_k", rank_k)
        check_short_forms(short_forms)
        if reranker is not None and not callable(reranker):
            raise SapelError(Errors.E351.format(name=name, value=reranker))
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
            "veto_threshold": None if veto_threshold is None else float(veto_threshold),
            "veto_action": veto_action,
            "veto_label": veto_label,
            "priors": bool(priors),
            "short_forms": short_forms,
            "one_sense_per_doc": bool(one_sense_per_doc),
            "implicit_short_forms": bool(implicit_short_forms),
            "spelling_variants": bool(spelling_variants),
            "rank_k": rank_k,
        }
        self.reranker = reranker
        self.scorer = scorer
        self.linker_kb: Optional[LinkerKB] = None
        self._cache: "OrderedDict[Tuple[str, TypeSet], Candidates]" = OrderedDict()
        self._cache_key: Tuple[Any, ...] = ()
        # the KB whose types were checked against type_filter; whether the labels were
        # checked against the docs' entity labels (each warns once)
        self._types_checked: Optional[LinkerKB] = None
        self._labels_checked = False
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
        if nlp is not None:
            self._check_pipeline_labels(nlp)

    def _check_pipeline_labels(self, nlp: Language) -> None:
        """Warn when the pipeline's entity recognizers declare labels and some of the
        linker's ``labels`` are not among them: those entities never come."""
        known = set()
        for name, pipe in nlp.pipeline:
            if pipe is not self and "doc.ents" in nlp.get_pipe_meta(name).assigns:
                known.update(getattr(pipe, "labels", None) or ())
        missing = [label for label in self.cfg["labels"] if label not in known]
        if known and missing:
            warnings.warn(
                Warnings.W320.format(name=self.name, labels=missing, known=sorted(known))
            )
            self._labels_checked = True

    def _check_settings(self, linker_kb: LinkerKB, docs: List[Doc]) -> None:
        """Warn once when ``type_filter`` names types that no concept of the KB has,
        or when ``labels`` differ only in case from the entity labels of the docs."""
        if self.cfg["type_filter"] and self._types_checked is not linker_kb:
            self._types_checked = linker_kb
            kb_types = {t for concept in linker_kb.kb for t in concept.types}
            wanted = {t for types in self.cfg["type_filter"].values() for t in types}
            if wanted - kb_types:
                warnings.warn(
                    Warnings.W321.format(
                        name=self.name,
                        types=sorted(wanted - kb_types),
                        kb_types=format_examples(sorted(kb_types), limit=20) or "none",
                    )
                )
        if self.cfg["labels"] and not self._labels_checked:
            seen = {ent.label_ for doc in docs for ent in doc.ents}
            by_case = {label.casefold(): label for label in seen}
            near = {
                label: by_case[label.casefold()]
                for label in self.cfg["labels"]
                if label not in seen and label.casefold() in by_case
            }
            if near:
                self._labels_checked = True
                warnings.warn(Warnings.W322.format(name=self.name, labels=near))

    def set_kb(self, kb_loader: Callable[[], LinkerKB]) -> None:
        """Give the linker its KB through a loader callable (as spaCy's EntityLinker)."""
        if not callable(kb_loader):
            raise SapelError(Errors.E307.format(name=self.name, value=kb_loader))
        linker_kb = kb_loader()
        if not isinstance(linker_kb, LinkerKB):
            raise SapelError(Errors.E308.format(name=self.name, type=type(linker_kb)))
        self._adopt_kb(linker_kb)

    def _adopt_kb(self, linker_kb: LinkerKB) -> None:
        """Use ``linker_kb``; a trained reranker must have been trained for it."""
        if self.cfg["priors"] and not linker_kb.kb.priors:
            logger.info(
                "sapel_linker '%s': KB %r has no priors from labelled mentions; ties "
                "between equally matching concepts keep the KB order",
                self.name, linker_kb.kb.meta.get("name"),
            )
        check = getattr(self.reranker, "check", None)
        if check is not None:
            check(linker_kb)
        self.linker_kb = linker_kb

    def _require_kb(self) -> LinkerKB:
        if self.linker_kb is None:
            raise SapelError(Errors.E300.format(name=self.name))
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
        """Link the doc's entities. An error goes to the pipe's error handler
        (``nlp.set_error_handler``), as in spaCy's own components; when the handler
        returns, the doc comes back as it is."""
        error_handler = self.get_error_handler()
        try:
            self.set_annotations([doc], self.predict([doc]))
        except Exception as e:
            error_handler(self.name, self, [doc], e)
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Link a stream of docs in batches. A failing batch goes to the error handler
        and, when the handler returns, is left out, as spaCy's ``TrainablePipe.pipe``
        does."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as e:
                error_handler(self.name, self, docs, e)

    def _mentions(self, doc: Doc) -> List[Span]:
        labels = set(self.cfg["labels"])
        return [ent for ent in doc.ents if not labels or ent.label_ in labels]

    def predict(self, docs: Iterable[Doc]) -> List[List[Candidates]]:
        """Candidates for each linkable entity of each doc; all mentions of the batch
        are encoded together, identical strings once (a reranker that encodes them
        again for its features gets the search's vectors back)."""
        docs = list(docs)
        linker_kb = self._require_kb()
        self._check_settings(linker_kb, docs)
        with linker_kb.encoder.reusing_vectors():
            return self._predict_batch(linker_kb, docs)

    def _predict_batch(self, linker_kb: LinkerKB, docs: List[Doc]) -> List[List[Candidates]]:
        type_filter = {
            label: frozenset(types) for label, types in self.cfg["type_filter"].items()
        }
        queries: List[Tuple[str, TypeSet]] = []
        spans: List[Span] = []
        long_forms: List[Optional[Tuple[str, TypeSet]]] = []
        counts: List[int] = []
        for doc in docs:
            expansions = self._abbreviations(doc)
            mentions = self._mentions(doc)
            if self.cfg["abbreviations"] and self.cfg["implicit_short_forms"]:
                # a definition in the text wins over a spelled-out mention
                implicit = implicit_long_forms([_mention_text(ent) for ent in mentions])
                expansions = {**implicit, **expansions}
            counts.append(len(mentions))
            for ent in mentions:
                text = _mention_text(ent)
                type_set = type_filter.get(ent.label_)
                queries.append((text, type_set))
                spans.append(ent)
                long_text = expansions.get(text)
                long_forms.append((long_text, type_set) if long_text else None)
        found = self._search_with_variants(queries + [q for q in long_forms if q is not None])
        extra = iter(found[len(queries) :])
        mentions = [
            Mention(ent, text, cands)
            if long is None
            else Mention(ent, text, cands, long_text=long[0], long_candidates=next(extra))
            for ent, (text, _), cands, long in zip(spans, queries, found, long_forms)
        ]
        # a reranker may do the work that its features share across docs (encoding
        # the mention strings) for the whole batch at once
        prepare = getattr(self.reranker, "prepare", None)
        if prepare is not None and mentions:
            prepare(linker_kb, mentions)
        result, i = [], 0
        for doc, n in zip(docs, counts):
            result.append(self._rank(doc, mentions[i : i + n]))
            i += n
        return result

    def _search_with_variants(self, queries: List[Tuple[str, TypeSet]]) -> List[Candidates]:
        """:meth:`_search`, and with ``spelling_variants`` each query that British
        spelling changes searched in American spelling too (each concept keeps its
        better score of the two)."""
        found = self._search(queries)
        if not self.cfg["spelling_variants"]:
            return found
        variants = [(i, (american_spelling(text), types)) for i, (text, types) in enumerate(queries)]
        variants = [(i, query) for i, query in variants if query[0] != queries[i][0]]
        if variants:
            k = self._search_k()
            for (i, _), extra in zip(variants, self._search([query for _, query in variants])):
                found[i] = best_of(found[i], extra)[:k]
        return found

    def _rank(self, doc: Doc, mentions: List[Mention]) -> List[Candidates]:
        """The ordering hook (:func:`.ranking.rank_doc`) with this linker's options."""
        cfg = self.cfg
        return rank_doc(
            self._require_kb(),
            doc,
            mentions,
            top_k=cfg["top_k"],
            priors=cfg["priors"],
            short_forms=cfg["short_forms"],
            one_sense_per_doc=cfg["one_sense_per_doc"],
            reranker=self.reranker,
        )

    def _search_k(self) -> int:
        """How many candidates to retrieve per mention: more than ``top_k`` when
        priors or a reranker reorder them."""
        cfg = self.cfg
        kb = self._require_kb().kb
        if self.reranker is not None or (cfg["priors"] and kb.priors):
            return max(cfg["top_k"], cfg["rank_k"])
        return cfg["top_k"]

    def _abbreviations(self, doc: Doc) -> Dict[str, str]:
        """Short form -> long form of the doc's abbreviation definitions, scispaCy's
        ``doc._.abbreviations`` included (set on ``doc._.sapel_abbreviations``), when
        the ``abbreviations`` option is on."""
        if not self.cfg["abbreviations"]:
            return {}
        definitions = collect_abbreviations(doc)
        set_abbreviations(doc, definitions)
        return short_form_map(definitions)

    def _search(self, queries: List[Tuple[str, TypeSet]]) -> List[Candidates]:
        """``LinkerKB.search`` through the LRU cache of (mention string, type filter)."""
        linker_kb = self._require_kb()
        cfg = self.cfg
        texts = [text for text, _ in queries]
        types = [type_set for _, type_set in queries]
        top_k = self._search_k()
        options = {
            "top_k": top_k,
            "batch_size": cfg["batch_size"],
            "sparse_weight": cfg["sparse_weight"],
        }
        if cfg["cache_size"] == 0:
            return linker_kb.search(texts, types=types, **options)
        cache = self._cache
        key = (linker_kb, top_k, cfg["sparse_weight"])
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
        veto = self.cfg["veto_threshold"]
        for doc, doc_candidates in zip(docs, candidates):
            vetoed: Set[Tuple[int, int]] = set()
            for ent, cands in zip(self._mentions(doc), doc_candidates):
                kb_id = cands[0][0] if cands and cands[0][1] >= threshold else ""
                if veto is not None and not (cands and cands[0][1] >= veto):
                    vetoed.add((ent.start, ent.end))
                    kb_id = ""
                for token in ent:
                    token.ent_kb_id_ = kb_id
                # extension values are keyed by the span's character offsets
                ent._.set(CANDIDATES_ATTR, [(cid, score) for cid, score in cands])
            if vetoed:
                self._veto(doc, vetoed)

    def _veto(self, doc: Doc, vetoed: Set[Tuple[int, int]]) -> None:
        """Drop or relabel the entities at the ``(start, end)`` token offsets
        ``vetoed``; their candidates stay on the spans' offsets."""
        ents = []
        for ent in doc.ents:
            if (ent.start, ent.end) not in vetoed:
                ents.append(ent)
            elif self.cfg["veto_action"] == "relabel":
                ents.append(Span(doc, ent.start, ent.end, label=self.cfg["veto_label"]))
        doc.ents = ents

    # --- serialization ------------------------------------------------------------
    def to_disk(
        self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> None:
        """``cfg``, the KB's parts (:meth:`LinkerKB.write_parts`: ``encoder``, ``kb``,
        ``index``, ``sparse``, ``meta``) and a trained ``reranker``, all but those
        named in ``exclude``. A linker without a KB (not initialized yet) writes its
        ``cfg`` only. ``cfg`` records the settings for reference; loading takes them
        from the config (see :meth:`from_disk`)."""
        serialize: Dict[str, Callable] = {"cfg": lambda p: write_json(p, self.cfg)}
        if getattr(self.reranker, "is_trained", False):
            serialize[RERANKER_PART] = self.reranker.to_disk
        earlier_save = (Path(path) / "cfg").is_file()
        path = to_disk(path, serialize, exclude)
        written = set(serialize)
        if self.linker_kb is not None:
            self.linker_kb.write_parts(path, exclude=exclude)
            written.update(self.linker_kb.part_names())
        if earlier_save:  # only a linker's own directory loses what this save lacks
            _remove_stale_parts(path, written, exclude)

    def from_disk(
        self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "SapelLinker":
        """Load the KB parts (data). The settings stay those the linker was built
        with, i.e. the config's, as for spaCy's own components: ``spacy.load(path,
        config=...)`` overrides win and ``nlp.config`` matches what runs. A KB part
        named in ``exclude`` is not read: the linker keeps its own. A directory with
        some but not all of ``encoder``, ``kb`` and ``index`` is refused."""
        path = Path(path)
        if not path.is_dir():
            raise IndexLoadError(Errors.E361.format(name=self.name, path=path))
        present = [part for part in (*PARTS, SPARSE_PART) if (path / part).exists()]
        if self._has_kb_parts(present, exclude, path):
            self._load_kb(LinkerKB.from_disk(path, exclude=exclude, keep=self.linker_kb))
        reranker_path = path / RERANKER_PART
        if self.reranker is not None and reranker_path.exists() and RERANKER_PART not in exclude:
            self.reranker.from_disk(reranker_path)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """The parts of :meth:`to_disk` as one msgpack map."""
        serialize: Dict[str, Callable] = {"cfg": lambda: json_dumps(self.cfg)}
        if getattr(self.reranker, "is_trained", False):
            serialize[RERANKER_PART] = self.reranker.to_bytes
        msg = to_dict(serialize, exclude)
        if self.linker_kb is not None:
            msg.update(srsly.msgpack_loads(self.linker_kb.to_bytes(exclude=exclude)))
        return srsly.msgpack_dumps(msg)

    def from_bytes(
        self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "SapelLinker":
        """Load the KB parts and a reranker; ``exclude`` and the settings as for
        :meth:`from_disk`."""
        msg = srsly.msgpack_loads(bytes_data)
        if self._has_kb_parts(list(msg), exclude, "the bytes given"):
            self._load_kb(LinkerKB.from_bytes(bytes_data, exclude=exclude, keep=self.linker_kb))
        if self.reranker is not None:
            from_dict(msg, {RERANKER_PART: self.reranker.from_bytes}, exclude)
        return self

    def _has_kb_parts(self, present: Sequence[str], exclude: Iterable[str], source: Any) -> bool:
        """Whether ``present`` (the parts found) holds KB parts to load that
        ``exclude`` does not name: none when the linker was saved before it had a KB.
        E320 when some of ``encoder``, ``kb`` and ``index`` are there but not all."""
        wanted = [part for part in PARTS if part not in exclude]
        found = [part for part in wanted if part in present]
        if found and len(found) < len(wanted):
            missing = ", ".join(f"{part}/" for part in wanted if part not in found)
            raise IndexLoadError(Errors.E320.format(name=self.name, path=source, missing=missing))
        return bool(found) or (SPARSE_PART in present and SPARSE_PART not in exclude)

    def _load_kb(self, linker_kb: LinkerKB) -> None:
        """Make the loaded KB the linker's; refuse a sparse_weight that it cannot
        serve now rather than at the first doc."""
        if self.cfg["sparse_weight"] > 0 and linker_kb.sparse is None:
            raise SapelError(Errors.E311)
        self._adopt_kb(linker_kb)


def find_linkers(nlp: Language) -> List[Tuple[str, SapelLinker]]:
    """The pipeline's sapel_linker components as ``(name, linker)``, in pipeline order."""
    return [(name, pipe) for name, pipe in nlp.pipeline if isinstance(pipe, SapelLinker)]


def _mention_text(ent: Span) -> str:
    """The mention string as the encoder sees it: whitespace collapsed."""
    return " ".join(ent.text.split())


def _remove_stale_parts(path: Path, written: Set[str], exclude: Iterable[str]) -> None:
    """Remove the parts an earlier save left in the linker's directory that this one
    did not write (e.g. ``sparse`` after the sparse index was dropped, ``reranker``
    after an untrained one replaced it), so that the directory loads as what was
    saved. Called only where an earlier save wrote ``cfg``, so a user's folder that
    happens to hold an ``index`` or ``kb`` is never emptied. Parts named in
    ``exclude`` are left as they are; nothing else is touched."""
    exclude = set(exclude)
    for name in (*PARTS, SPARSE_PART, META_FILE, RERANKER_PART):
        part = Path(path) / name
        if name in written or name in exclude or (name == META_FILE and META_PART in exclude):
            continue
        if part.is_dir() and not part.is_symlink():
            shutil.rmtree(part)
        elif part.exists() or part.is_symlink():
            part.unlink()
