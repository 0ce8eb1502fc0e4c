"""Helpers shared by test modules (pytest puts tests/ on sys.path for its conftest)."""
from __future__ import annotations

import spacy
from spacy.language import Language
from spacy.tokens import Doc


def doc_with_ents(nlp: Language, text: str, spans) -> Doc:
    """A doc of ``text`` whose entities are ``spans``: (substring, label) pairs,
    found left to right."""
    doc = nlp.make_doc(text)
    ents, pos = [], 0
    for sub, label in spans:
        start = text.index(sub, pos)
        pos = start + len(sub)
        ents.append(doc.char_span(start, pos, label=label))
    doc.ents = ents
    return doc


def linker_nlp(linker_kb, *, initialize: bool = False, **config) -> Language:
    """A blank English pipeline with one ``sapel_linker`` (``config``) on ``linker_kb``:
    set directly, or through the component's ``initialize`` (which also builds what
    the config needs, e.g. a sparse index for ``sparse_weight``)."""
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("sapel_linker", config=config)
    if initialize:
        linker.initialize(kb_loader=lambda: linker_kb)
    else:
        linker.set_kb(lambda: linker_kb)
    return nlp
