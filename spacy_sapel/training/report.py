"""Counted problems found while converting a corpus: every dropped, changed or
skipped item is counted, a few examples are kept, and one warning per kind is
emitted at the end of a file instead of silently losing data."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import Errors, SapelError

MAX_EXAMPLES = 3


@dataclass
class CorpusReport:
    """Counts of ``kind -> n`` with up to ``MAX_EXAMPLES`` examples each, plus the
    numbers of documents and entities written."""

    path: str = ""
    docs: int = 0
    ents: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    examples: Dict[str, List[str]] = field(default_factory=dict)
    details: Dict[str, set] = field(default_factory=dict)

    def add(self, kind: str, example: str, *, detail: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)
        if detail:
            self.details.setdefault(kind, set()).add(detail)

    def examples_text(self, kind: str) -> str:
        return "; ".join(self.examples.get(kind, []))

    def rows(self) -> List[Tuple[str, int, str]]:
        """``(kind, count, examples)`` rows for a table."""
        return [(kind, n, self.examples_text(kind)) for kind, n in sorted(self.counts.items())]

    def merge(self, other: "CorpusReport") -> None:
        self.docs += other.docs
        self.ents += other.ents
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
            room = MAX_EXAMPLES - len(self.examples.setdefault(kind, []))
            self.examples[kind].extend(other.examples.get(kind, [])[: max(room, 0)])
        for kind, values in other.details.items():
            self.details.setdefault(kind, set()).update(values)

    def emit(self, messages: Dict[str, Tuple[str, dict]]) -> None:
        """Warn once per counted kind; ``messages`` maps a kind to a message
        template from :class:`~spacy_sapel.errors.Warnings` and its extra fields."""
        for kind, (template, extra) in messages.items():
            count = self.counts.get(kind, 0)
            if count:
                text = template.format(
                    path=self.path, count=count, examples=self.examples_text(kind), **extra
                )
                warnings.warn(text, UserWarning, stacklevel=3)


def check_policy(option: str, value: str, options: Sequence[str]) -> None:
    """E506 unless ``value`` is one of a reader's ``options`` for ``option``."""
    if value not in options:
        raise SapelError(Errors.E506.format(option=option, value=value, options=", ".join(options)))


def report_for(path: Path, report: Optional[CorpusReport]) -> CorpusReport:
    """The caller's report (re-pointed at ``path``) or a new one for ``path``."""
    own = report if report is not None else CorpusReport()
    own.path = str(path)
    return own
