"""Running a pipeline over documents that may come with their entities given."""
from itertools import groupby
from typing import Iterable, Iterator, Tuple

from spacy.language import Language
from spacy.tokens import Doc


def annotate(
    nlp: Language, stream: Iterable[Tuple[Doc, bool]], *, batch_size: int = 64
) -> Iterator[Doc]:
    """Run the pipeline over ``(doc, has_ents)`` pairs, skipping the components that
    set ``doc.ents`` for docs whose entities are given."""
    setters = {
        name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns
    }
    for has_ents, group in groupby(stream, key=lambda item: item[1]):
        docs: Iterable[Doc] = (doc for doc, _ in group)
        for name, proc in nlp.pipeline:
            if has_ents and name in setters:
                continue
            docs = proc.pipe(docs, batch_size=batch_size) if hasattr(proc, "pipe") else map(proc, docs)
        yield from docs
