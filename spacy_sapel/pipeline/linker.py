"""The ``sapel_linker`` component: links ``doc.ents`` to knowledge-base concepts by
nearest-neighbour search over SAP-encoder embeddings of the concepts' names."""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import srsly
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
from .linker_kb import LinkerKB

CANDIDATES_ATTR = "kb_candidates"
DEFAULT_CONFIG: Dict[str, Any] = {
    "top_k": 5,
    "threshold": 0.0,
    "labels": [],
    "batch_size": 128,
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
    scorer: Optional[Callable],
) -> "SapelLinker":
    return SapelLinker(
        nlp,
        name,
        top_k=top_k,
        threshold=threshold,
        labels=labels,
        batch_size=batch_size,
        scorer=scorer,
    )


class SapelLinker(Pipe):
    """Set ``ent.kb_id_`` and ``ent._.kb_candidates`` (``[(concept_id, score), ...]``,
    best first) for every entity whose label it links. A best score below
    ``threshold`` leaves ``kb_id_`` empty (NIL) but keeps the candidates."""

    def __init__(
        self,
        nlp: Language,
        name: str = "sapel_linker",
        *,
        top_k: int = 5,
        threshold: float = 0.0,
        labels: Sequence[str] = (),
        batch_size: int = 128,
        scorer: Optional[Callable] = None,
    ) -> None:
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(Errors.E303.format(name="top_k", value=top_k))
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(Errors.E303.format(name="batch_size", value=batch_size))
        if not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise ValueError(Errors.E306.format(value=threshold))
        self.vocab = nlp.vocab
        self.name = name
        self.cfg: Dict[str, Any] = {
            "top_k": top_k,
            "threshold": float(threshold),
            "labels": list(labels),
            "batch_size": batch_size,
        }
        self.scorer = scorer
        self.linker_kb: Optional[LinkerKB] = None
        install_extensions()

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
        self._require_kb()

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

    def predict(self, docs: Iterable[Doc]) -> List[List[List[tuple]]]:
        """Candidates for each linkable entity of each doc; all mentions of the batch
        are encoded together, identical strings once."""
        docs = list(docs)
        linker_kb = self._require_kb()
        per_doc = [self._mentions(doc) for doc in docs]
        texts = [_mention_text(ent) for ents in per_doc for ent in ents]
        found = linker_kb.search(
            texts, top_k=self.cfg["top_k"], batch_size=self.cfg["batch_size"]
        )
        result, i = [], 0
        for ents in per_doc:
            result.append(found[i : i + len(ents)])
            i += len(ents)
        return result

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
        serialize: Dict[str, Callable] = {"cfg": lambda p: srsly.write_json(p, self.cfg)}
        if self.linker_kb is not None:
            serialize["encoder"] = self.linker_kb.encoder.to_disk
            serialize["kb"] = self.linker_kb.kb.to_disk
            serialize["index"] = self.linker_kb.index.to_disk
        to_disk(path, serialize, exclude)

    def from_disk(
        self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "SapelLinker":
        parts: Dict[str, Any] = {}

        def load_encoder(p: Path) -> None:
            parts["encoder"] = SapEncoder.from_disk(p)

        def load_index(p: Path) -> None:
            encoder = parts["encoder"]
            parts["index"] = DenseIndex.from_disk(
                p, expected_dim=encoder.dim, expected_fingerprint=encoder.fingerprint
            )

        deserialize = {
            "cfg": lambda p: self.cfg.update(srsly.read_json(p)),
            "encoder": load_encoder,
            "kb": lambda p: parts.__setitem__("kb", KnowledgeBase.from_disk(p)),
            "index": load_index,
        }
        if not (Path(path) / "encoder").exists():
            deserialize = {"cfg": deserialize["cfg"]}
        from_disk(path, deserialize, exclude)
        if parts:
            self.linker_kb = LinkerKB(**parts)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        serialize: Dict[str, Callable] = {"cfg": lambda: srsly.json_dumps(self.cfg)}
        if self.linker_kb is not None:
            serialize["encoder"] = self.linker_kb.encoder.to_bytes
            serialize["kb"] = self.linker_kb.kb.to_bytes
            serialize["index"] = self.linker_kb.index.to_bytes
        return to_bytes(serialize, exclude)

    def from_bytes(
        self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "SapelLinker":
        parts: Dict[str, Any] = {}
        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "encoder": lambda b: parts.__setitem__("encoder", SapEncoder.from_bytes(b)),
            "kb": lambda b: parts.__setitem__("kb", KnowledgeBase.from_bytes(b)),
            "index": lambda b: parts.__setitem__(
                "index",
                DenseIndex.from_bytes(
                    b,
                    expected_dim=parts["encoder"].dim,
                    expected_fingerprint=parts["encoder"].fingerprint,
                ),
            ),
        }
        from_bytes(bytes_data, deserialize, exclude)
        if parts:
            self.linker_kb = LinkerKB(**parts)
        return self


def _mention_text(ent: Span) -> str:
    """The mention string as the encoder sees it: whitespace collapsed."""
    return " ".join(ent.text.split())
