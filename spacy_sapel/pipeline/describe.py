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


OMIM_URL_TEMPLATE = "https://omim.org/entry/{}"


def url_for(
    concept_id: str,
    *,
    kb_name: str = "",
    url_template: str = DEFAULT_URL_TEMPLATE,
    url_templates: Optional[Dict[str, str]] = None,
) -> str:
    """The link of a concept. ``url_templates`` maps a KB name (or linker name) to a
    displaCy ``kb_url_template`` (``{}`` is the id), and an id prefix ending in ``:``
    (``"OMIM:"``) to a template that gets the id without the prefix; the longest
    matching prefix wins, then the KB, then ``url_template``."""
    templates = {"OMIM:": OMIM_URL_TEMPLATE, **(url_templates or {})}
    prefixes = [k for k in templates if k.endswith(":") and concept_id.startswith(k)]
    if prefixes:
        prefix = max(prefixes, key=len)
        return templates[prefix].format(concept_id[len(prefix):])
    return templates.get(kb_name, url_template).format(concept_id)


def links_data(
    nlp: Language,
    docs: Iterable[Doc],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    url_templates: Optional[Dict[str, str]] = None,
    runner_ups: int = 4,
    titles: Optional[Iterable[Optional[str]]] = None,
) -> List[Dict[str, Any]]:
    """displaCy's manual ``ent`` data: each linked entity's label and, as a link, its
    KB id and canonical name; the runner-up candidates (id, name, score) go into the
    link's ``title`` attribute, which browsers show on hover."""
    linkers = [pipe for _, pipe in nlp.pipeline if isinstance(pipe, SapelLinker)]
    titles_list = list(titles) if titles is not None else None
    data = []
    for i, doc in enumerate(docs):
        ents = []
        for ent_span, record in zip(doc.ents, describe_entities(nlp, doc)):
            ent = {"start": record["start"], "end": record["end"], "label": record["label"]}
            if record["kb_id"]:
                linker = _linker_for(linkers, ent_span)
                kb_name = _kb_name(linker)
                url = url_for(record["kb_id"], kb_name=kb_name, url_template=url_template,
                              url_templates=url_templates)
                title = _title(record, runner_ups)
                # displaCy inserts kb_id and kb_url into the markup as they are: escape
                # them, and carry the title attribute inside the href's quotes
                ent["kb_id"] = html.escape(f"{record['kb_id']} {record['name']}".strip())
                ent["kb_url"] = html.escape(url) + '" title="' + html.escape(title)
            ents.append(ent)
        title = titles_list[i] if titles_list is not None and i < len(titles_list) else None
        data.append({"text": doc.text, "ents": ents, "title": title})
    return data


def _kb_name(linker: Optional[SapelLinker]) -> str:
    if linker is None or linker.linker_kb is None:
        return ""
    return str(linker.kb.meta.get("name") or linker.name)


def _title(record: Dict[str, Any], runner_ups: int) -> str:
    score = f" (score {record['score']:.3f})" if record["score"] is not None else ""
    parts = [f"{record['kb_id']} {record['name']}{score}"]
    others = [c for c in record["candidates"] if c["id"] != record["kb_id"]][:runner_ups]
    if others:
        parts.append("runner-ups: " + "; ".join(
            f"{c['id']} {c['name']} ({c['score']:.3f})" for c in others))
    return " | ".join(parts)


def render_links(
    nlp: Language,
    docs: Iterable[Doc],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    url_templates: Optional[Dict[str, str]] = None,
    page: bool = True,
    titles: Optional[Iterable[Optional[str]]] = None,
) -> str:
    """displaCy entity markup where each linked entity shows its label and, as a link,
    its KB id and canonical name, with the runner-up candidates on hover."""
    data = links_data(nlp, docs, url_template=url_template, url_templates=url_templates, titles=titles)
    return displacy.render(data, style="ent", manual=True, page=page, jupyter=False)
