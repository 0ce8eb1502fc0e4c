"""PubTator corpora (NCBI-disease, BC5CDR, MedMentions): ``pmid|t|title``,
``pmid|a|abstract``, then one tab-separated mention per line
(``pmid start end text type ids[ composite-parts]``); ``CID`` relation lines are skipped."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, Iterator, List, Optional

from ..kb.ids import normalized_ids, split_ids
from ..util import iter_lines, malformed_line

_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")


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


def gold_id_set(mention: PubTatorMention) -> FrozenSet[str]:
    """The mention's ids in the comparison form of :func:`~spacy_sapel.kb.ids.normalize_id`."""
    return normalized_ids(mention.ids)


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
            raise malformed_line(
                path, line_no, "not a title, abstract or mention line of the current document",
                "'pmid|t|title', 'pmid|a|abstract' or "
                "'pmid<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids' after its document",
                line,
            )
        try:
            start, end = int(cols[1]), int(cols[2])
        except ValueError:
            raise malformed_line(
                path, line_no, f"offsets {cols[1]!r}, {cols[2]!r}", "integer start and end offsets", line
            ) from None
        if types is not None and cols[4] not in types:
            continue
        ids = split_ids(cols[5]) if len(cols) > 5 else []
        doc.mentions.append(PubTatorMention(start, end, cols[3], cols[4], ids, line_no))
    if doc is not None:
        yield doc
