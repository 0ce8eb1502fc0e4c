"""PubTator corpora (NCBI-disease, BC5CDR, MedMentions): ``pmid|t|title``,
``pmid|a|abstract``, then one tab-separated mention per line
(``pmid start end text type ids[ composite-parts]``); ``CID`` relation lines are skipped."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, Iterator, List, Optional

from ..errors import Errors
from ..util import iter_lines

_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")
NO_ID = "-1"


@dataclass
class PubTatorMention:
    start: int
    end: int
    text: str
    type: str
    ids: List[str]
    line: int


@dataclass
class PubTatorDoc:
    pmid: str
    title: str = ""
    abstract: str = ""
    mentions: List[PubTatorMention] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Title and abstract joined by one space: the offsets' frame of reference."""
        return f"{self.title} {self.abstract}" if self.abstract else self.title


def split_ids(ids: str) -> List[str]:
    """Composite ids are joined by ``|`` or ``+``; ``-1`` means no id."""
    return [i.strip() for i in re.split(r"[|+]", ids) if i.strip() and i.strip() != NO_ID]


def normalize_id(concept_id: str) -> str:
    """The comparison form the published evaluations use: no ``MESH:`` prefix, OMIM
    ids as ``OMIM:n``."""
    concept_id = concept_id.strip()
    if concept_id.upper().startswith("MESH:"):
        return concept_id[5:]
    return concept_id


def gold_id_set(mention: PubTatorMention) -> FrozenSet[str]:
    return frozenset(normalize_id(i) for i in mention.ids)


def kb_id_set(kb_id: str) -> FrozenSet[str]:
    """The gold id set of an entity whose ``kb_id_`` holds a mention's ids joined by
    ``|`` (as :func:`~spacy_sapel.training.pubtator_docs.pubtator_to_docs` sets it)."""
    return frozenset(normalize_id(i) for i in split_ids(kb_id))


def is_pubtator(path: Path) -> bool:
    """Whether the first non-empty line of ``path`` is a PubTator title line
    (``pmid|t|title``)."""
    for _, line in iter_lines(Path(path)):
        if line.strip():
            return "|t|" in line.split("\t")[0]
    return False


def read_pubtator(path: Path, *, types: Optional[List[str]] = None) -> Iterator[PubTatorDoc]:
    """Yield documents with their mentions (restricted to ``types`` when given), as
    the file states them; aligning offsets to tokens is the converters' job."""
    path = Path(path)
    doc: Optional[PubTatorDoc] = None
    for line_no, line in iter_lines(path):
        if not line.strip():
            if doc is not None:
                yield doc
                doc = None
            continue
        match = _TEXT_LINE.match(line)
        if match:
            pmid, kind, text = match.groups()
            if doc is not None and doc.pmid != pmid:
                yield doc
                doc = None
            if doc is None:
                doc = PubTatorDoc(pmid=pmid)
            if kind == "t":
                doc.title = text
            else:
                doc.abstract = text
            continue
        cols = line.split("\t")
        if len(cols) == 4 or (len(cols) >= 2 and cols[1] in ("CID", "relation")):
            continue  # relation line
        if len(cols) < 5 or doc is None or cols[0] != doc.pmid:
            raise ValueError(
                Errors.E500.format(
                    path=path,
                    line=line_no,
                    problem=f"unexpected line {line[:80]!r}",
                    expected="'pmid|t|title', 'pmid|a|abstract' or "
                    "'pmid<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids' after its document",
                )
            )
        try:
            start, end = int(cols[1]), int(cols[2])
        except ValueError:
            raise ValueError(
                Errors.E500.format(
                    path=path, line=line_no, problem=f"offsets {cols[1]!r}, {cols[2]!r}",
                    expected="integer start and end offsets",
                )
            ) from None
        if types is not None and cols[4] not in types:
            continue
        ids = split_ids(cols[5]) if len(cols) > 5 else []
        doc.mentions.append(PubTatorMention(start, end, cols[3], cols[4], ids, line_no))
    if doc is not None:
        yield doc
