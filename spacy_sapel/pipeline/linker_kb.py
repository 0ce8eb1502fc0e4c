"""The linker's searchable knowledge base: a KB, the encoder that embedded its names,
and the dense index over those embeddings, built, searched and saved together."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import srsly

from ..encoder import SapEncoder
from ..errors import Errors, IndexLoadError
from ..index import DenseIndex
from ..kb import KnowledgeBase
from ..util import PathLike, atomic_directory

FORMAT_VERSION = 1
PARTS = ("encoder", "kb", "index")

Candidates = List[Tuple[str, float]]


@dataclass
class LinkerKB:
    """Everything the linker needs to turn mention strings into ranked concept ids."""

    encoder: SapEncoder
    kb: KnowledgeBase
    index: DenseIndex

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def build(
        cls,
        kb: KnowledgeBase,
        encoder: SapEncoder,
        *,
        index_type: str = "flat",
        index_options: Optional[Dict[str, Any]] = None,
        show_progress: bool = False,
    ) -> "LinkerKB":
        """Embed every distinct name of every concept and index the embeddings."""
        if len(kb) == 0:
            raise ValueError(Errors.E004.format(source=kb.meta.get("name", "kb")))
        names, _ = kb.alias_table()
        vectors = encoder.encode(names, show_progress=show_progress)
        index = DenseIndex(index_type=index_type, **(index_options or {}))
        index.build(vectors, fingerprint=encoder.fingerprint)
        return cls(encoder=encoder, kb=kb, index=index)

    def check(self) -> None:
        """Refuse an index that was not built from this KB with this encoder."""
        n_aliases = len(self.kb.alias_table()[0])
        if self.index.ntotal != n_aliases:
            raise IndexLoadError(
                Errors.E301.format(ntotal=self.index.ntotal, n_aliases=n_aliases)
            )
        if self.index.dim != self.encoder.dim:
            raise IndexLoadError(
                Errors.E302.format(
                    what="dimension", index=self.index.dim, encoder=self.encoder.dim
                )
            )
        if self.index.meta.get("fingerprint") != self.encoder.fingerprint:
            raise IndexLoadError(
                Errors.E302.format(
                    what="encoder fingerprint",
                    index=self.index.meta.get("fingerprint"),
                    encoder=self.encoder.fingerprint,
                )
            )

    def search(
        self,
        mentions: Sequence[str],
        *,
        top_k: int,
        alias_k: Optional[int] = None,
        batch_size: Optional[int] = None,
    ) -> List[Candidates]:
        """Rank concepts for each mention string: the score of a concept is the best
        cosine similarity between the mention and any of its names. Identical mention
        strings are encoded once."""
        if top_k < 1:
            raise ValueError(Errors.E303.format(name="top_k", value=top_k))
        unique = list(dict.fromkeys(mentions))
        if not unique:
            return []
        vectors = self.encoder.encode(unique, batch_size=batch_size)
        # Several names of one concept can fill the neighbour list, so search more
        # alias rows than concepts wanted, then keep the best score per concept.
        k = min(alias_k or max(8 * top_k, 32), self.index.ntotal)
        scores, rows = self.index.search(vectors, k)
        _, alias_concepts = self.kb.alias_table()
        ranked = [
            self._rank(alias_concepts, score_row, row_row, top_k)
            for score_row, row_row in zip(scores, rows)
        ]
        by_mention = dict(zip(unique, ranked))
        return [by_mention[m] for m in mentions]

    def _rank(
        self,
        alias_concepts: np.ndarray,
        scores: np.ndarray,
        rows: np.ndarray,
        top_k: int,
    ) -> Candidates:
        best: Dict[int, float] = {}
        for score, row in zip(scores.tolist(), rows.tolist()):
            if row < 0:
                continue
            concept = int(alias_concepts[row])
            if score > best.get(concept, -np.inf):
                best[concept] = score
        # sort by score, then by KB order, so ties are broken the same way every run
        order = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:top_k]
        return [(self.kb.concept_at(row).concept_id, float(s)) for row, s in order]

    def to_disk(self, path: PathLike) -> None:
        """Write ``encoder/``, ``kb/``, ``index/`` and ``meta.json`` atomically."""
        with atomic_directory(path) as tmp:
            self.encoder.to_disk(tmp / "encoder")
            self.kb.to_disk(tmp / "kb")
            self.index.to_disk(tmp / "index")
            srsly.write_json(tmp / "meta.json", self.meta)

    @classmethod
    def from_disk(cls, path: PathLike, *, device: str = "auto") -> "LinkerKB":
        path = Path(path)
        if not path.is_dir():
            raise IndexLoadError(Errors.E304.format(path=path))
        missing = [part for part in PARTS if not (path / part).exists()]
        if missing:
            raise IndexLoadError(Errors.E305.format(path=path, missing=", ".join(missing)))
        encoder = SapEncoder.from_disk(path / "encoder", device=device)
        kb = KnowledgeBase.from_disk(path / "kb")
        index = DenseIndex.from_disk(
            path / "index",
            expected_dim=encoder.dim,
            expected_fingerprint=encoder.fingerprint,
            device=device,
        )
        return cls(encoder=encoder, kb=kb, index=index)

    @property
    def meta(self) -> Dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kb": self.kb.meta,
            "index": self.index.meta,
            "encoder": self.encoder.cfg,
        }
