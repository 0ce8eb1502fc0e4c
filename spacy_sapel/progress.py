"""Progress bars for long loops (reading a large vocabulary or corpus, linking a
corpus), as spaCy shows them: tqdm on stderr, only when stderr is a terminal (so logs,
pipes and tests get none), and only for a loop that lasts over a second."""
from __future__ import annotations

from typing import Iterable, Optional, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(iterable: Optional[Iterable[T]] = None, *, desc: str, unit: str = "it",
             total: Optional[int] = None) -> "tqdm[T]":
    """A tqdm bar over ``iterable`` (or updated by hand when None)."""
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=None, delay=1.0,
                leave=False, unit_scale=True, dynamic_ncols=True)
