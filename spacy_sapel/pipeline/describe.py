"""Linked entities as plain records (for JSONL output and tables) and displaCy data."""
from __future__ import annotations

import html
import zlib
from typing import Any, Dict, Iterable, List, Optional

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from .linker import CANDIDATES_ATTR, SapelLinker, find_linkers

DEFAULT_URL_TEMPLATE = "https://meshb.nlm.nih.gov/record/ui?ui={}"
# displaCy's entity markup (its ``template`` option) with the entity's hover text, the
# ``title`` param each entity brings, on the whole mark
TPL_LINKED_ENT = """
<mark class="entity" title="{title}" style="background: {bg}; padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; border-radius: 0.35em;">
    {text}
    <span style="font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; vertical-align: middle; margin-left: 0.5rem">{label}{kb_link}</span>
</mark>
"""
# light colours that keep black text readable; a label gets one by a hash of its name
LABEL_PALETTE = [
    "#fca5a5", "#93c5fd", "#86efac", "#fcd34d", "#c4b5fd",
    "#f9a8d4", "#5eead4", "#fdba74", "#a5b4fc", "#bef264",
]


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
    linkers = [linker for _, linker in find_linkers(nlp)]
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
    KB id and canonical name; the candidates (id, name, score) go into the ``title``
    param, which :data:`TPL_LINKED_ENT` puts on the entity for browsers to show on
    hover. Render it with :func:`display_options`."""
    linkers = [linker for _, linker in find_linkers(nlp)]
    titles_list = list(titles) if titles is not None else None
    data = []
    for i, doc in enumerate(docs):
        ents = []
        for ent_span, record in zip(doc.ents, describe_entities(nlp, doc)):
            # displaCy puts kb_id, kb_url and params into the markup as they are
            ent = {
                "start": record["start"],
                "end": record["end"],
                "label": record["label"],
                "params": {"title": html.escape(_title(record, runner_ups))},
            }
            if record["kb_id"]:
                linker = _linker_for(linkers, ent_span)
                url = url_for(record["kb_id"], kb_name=_kb_name(linker), url_template=url_template,
                              url_templates=url_templates)
                ent["kb_id"] = html.escape(f"{record['kb_id']} {record['name']}".strip())
                ent["kb_url"] = html.escape(url)
            ents.append(ent)
        title = titles_list[i] if titles_list is not None and i < len(titles_list) else None
        data.append({"text": doc.text, "ents": ents, "title": title})
    return data


def label_colors(labels: Iterable[str]) -> Dict[str, str]:
    """A colour from :data:`LABEL_PALETTE` per entity label, chosen by a hash of the
    upper-cased label, so a label has the same colour on every page."""
    return {
        label.upper(): LABEL_PALETTE[zlib.crc32(label.upper().encode("utf8")) % len(LABEL_PALETTE)]
        for label in labels
    }


def display_options(data: List[Dict[str, Any]]) -> Dict[str, Any]:
    """displaCy ``options`` for :func:`links_data`'s data: the template with the hover
    text and a colour for each label."""
    labels = {ent["label"] for doc in data for ent in doc["ents"]}
    return {"template": TPL_LINKED_ENT, "colors": label_colors(sorted(labels))}


def _kb_name(linker: Optional[SapelLinker]) -> str:
    if linker is None or linker.linker_kb is None:
        return ""
    return str(linker.kb.meta.get("name") or linker.name)


def _title(record: Dict[str, Any], runner_ups: int) -> str:
    """The hover text: the link and its score, then the runner-up candidates; for an
    entity left NIL, its best candidates."""
    candidates = record["candidates"]
    if not record["kb_id"]:
        if not candidates:
            return ""
        return "NIL: no candidate reached the threshold | best: " + _candidates(candidates[: runner_ups + 1])
    score = f" (score {record['score']:.3f})" if record["score"] is not None else ""
    parts = [f"{record['kb_id']} {record['name']}{score}"]
    others = [c for c in candidates if c["id"] != record["kb_id"]][:runner_ups]
    if others:
        parts.append("runner-ups: " + _candidates(others))
    return " | ".join(parts)


def _candidates(candidates: List[Dict[str, Any]]) -> str:
    return "; ".join(f"{c['id']} {c['name']} ({c['score']:.3f})" for c in candidates)


def render_links(
    nlp: Language,
    docs: Iterable[Doc],
    *,
    url_template: str = DEFAULT_URL_TEMPLATE,
    url_templates: Optional[Dict[str, str]] = None,
    page: bool = True,
    titles: Optional[Iterable[Optional[str]]] = None,
) -> str:
    """displaCy entity markup where each linked entity shows its label (in its
    colour) and, as a link, its KB id and canonical name, with the runner-up
    candidates on hover."""
    data = links_data(nlp, docs, url_template=url_template, url_templates=url_templates, titles=titles)
    return displacy.render(data, style="ent", manual=True, page=page, jupyter=False,
                           options=display_options(data))
