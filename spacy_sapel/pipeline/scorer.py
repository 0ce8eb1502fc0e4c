"""Link scoring through spaCy's ``Scorer.score_links`` (``nel_micro_p/r/f``)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable

from spacy.scorer import Scorer
from spacy.training import Example
from spacy.util import registry

#: kb_id values that mean "not linked".
NIL_LABELS = ("", "NIL")


def score_links(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """Micro P/R/F of the predicted kb ids on entities whose offsets match the gold
    ones (NER mistakes are left out, as spaCy's entity_linker scores)."""
    return Scorer.score_links(examples, negative_labels=list(NIL_LABELS), **kwargs)


@registry.scorers("sapel.linker_scorer.v1")
def make_linker_scorer() -> Callable[..., Dict[str, Any]]:
    """Registered as ``sapel.linker_scorer.v1``."""
    return score_links
