"""Linked entities as plain records (for JSONL output and tables) and displaCy data."""
from __future__ import annotations

import html
from typing import Any, Dict, Iterable, List, Optional

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from .linker import CANDIDATES_ATTR, SapelLinker

DEFAULT_URL_TEMPLATE = "https://meshb.nlm.nih.gov/record/ui?ui={}"


def _linker_for(linkers: List[SapelLinker], ent: Span) -> Optional[SapelLinker]:
    for linker in linkers:
        if not linker.labels or ent.label_ in linker.labels:
            return linker
    return None


def _name(linker: Optional[SapelLinker], concept_id: str) -> str:
    if linker is None or linker.linker_kb is None or concept_id not in linker.kb:
        return ""
    return linker.kb[concept_id].canonical_name


def describe_entities(nlp: Language, doc: Doc) -> List[Dict[str, Any]]:
    """One record per entity: offsets, text, label, kb id, canonical name, score and
    the ranked candidates with their names."""
    linkers = [pipe for _, pipe in nlp.pipeline if isinstance(pipe, SapelLinker)]
    records = []
    for ent in doc.ents:
        linker = _linker_for(linkers, ent)
        candidates = ent._.get(CANDIDATES_ATTR) or []
        score = dict(candidates).get(ent.kb_id_) if ent.kb_id_ else None
        records.append(
            {
                "start": ent.start_char,
                "end": ent.end_char,
                "text": ent.text,
                "label": ent.label_,
                "kb_id": ent.kb_id_,
                "name": _name(linker, ent.kb_id_),
                "score": score,
                "candidates": [
                    {"id": cid, "name": _name(linker, cid), "score": s}
                    for cid, s in candidates
                ],
            }
        )
    return records


def render_links(
    nlp: Language,
    docs: Iterable[Doc],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    page: bool = True,
) -> str:
    """displaCy entity markup where each linked entity shows its label and, as a link,
    its KB id and canonical name."""
    data = []
    for doc in docs:
        ents = []
        for record in describe_entities(nlp, doc):
            ent = {"start": record["start"], "end": record["end"], "label": record["label"]}
            if record["kb_id"]:
                # displaCy inserts these into the markup as they are
                text = f"{record['kb_id']} {record['name']}".strip()
                ent["kb_id"] = html.escape(text)
                ent["kb_url"] = html.escape(url_template.format(record["kb_id"]))
            ents.append(ent)
        data.append({"text": doc.text, "ents": ents, "title": None})
    return displacy.render(data, style="ent", manual=True, page=page, jupyter=False)
