"""PubTator documents as spaCy ``Doc`` objects with entities *and their kb ids*, so
that NER, linking and joint NER + linking are trained and scored from one corpus.

Policies (each counted, with examples, in a warning at the end of a file):

- **kb ids**: ``ent.kb_id_`` holds the mention's ids joined by ``|`` as the file
  gives them (composites stay whole, ``-1`` becomes empty = NIL); the evaluation
  splits and normalises them like :func:`~spacy_sapel.training.gold_id_set`.
- **misaligned offsets** (``misaligned``): ``"split"`` (default) splits the tokens
  at the mention's boundaries so the gold span is kept exactly; ``"expand"`` widens
  the span to the enclosing tokens; ``"skip"`` drops the mention; ``"error"`` raises.
- **overlapping mentions**: the longest span is kept, the earliest on ties
  (``spacy.util.filter_spans``); the others are dropped.
- **types** (``label_map``): when given, a mention's type is renamed through it and
  types outside it are skipped; without it, the type is the label.
- **no abstract**: the text is the title alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from ..errors import Errors, InputFileError, Warnings
from .pubtator import PubTatorDoc, PubTatorMention, read_pubtator
from .report import CorpusReport, check_policy, report_for

MISALIGNED_POLICIES = ("split", "expand", "skip", "error")
PMID_KEY = "pubtator_pmid"


def pubtator_to_docs(
    nlp: Language,
    path: Path,
    *,
    label_map: Optional[Dict[str, str]] = None,
    misaligned: str = "split",
    report: Optional[CorpusReport] = None,
) -> Iterator[Doc]:
    """Yield one ``Doc`` per PubTator document (title + space + abstract) with its
    mentions as entities (label, kb id); ``doc.user_data["pubtator_pmid"]`` keeps
    the PMID. See the module docstring for the policies."""
    check_policy("misaligned policy", misaligned, MISALIGNED_POLICIES)
    path = Path(path)
    own_report = report_for(path, report)
    n = 0
    for pub in read_pubtator(path):
        n += 1
        yield _convert(nlp, path, pub, label_map, misaligned, own_report)
    if n == 0:
        raise InputFileError(
            Errors.E502.format(path=path, what="PubTator documents",
                               expected="'pmid|t|title', 'pmid|a|abstract' and mention lines")
        )
    if report is None:
        emit_pubtator_warnings(own_report, misaligned=misaligned, label_map=label_map)


def emit_pubtator_warnings(
    report: CorpusReport, *, misaligned: str, label_map: Optional[Dict[str, str]]
) -> None:
    action = {
        "split": "their tokens were split at the mention boundaries (mentions kept exactly)",
        "expand": "the spans were widened to the enclosing tokens",
        "skip": "they were dropped",
        "error": "",
    }[misaligned]
    report.emit(
        {
            "overlap": (Warnings.W501, {}),
            "misaligned": (Warnings.W502, {"action": action}),
            "unknown_type": (
                Warnings.W503,
                {"types": sorted(report.details.get("unknown_type", ())),
                 "labels": sorted(label_map or {})},
            ),
            "no_abstract": (Warnings.W504, {}),
        }
    )


def _convert(
    nlp: Language,
    path: Path,
    pub: PubTatorDoc,
    label_map: Optional[Dict[str, str]],
    misaligned: str,
    report: CorpusReport,
) -> Doc:
    text = pub.text
    if not pub.abstract:
        report.add("no_abstract", pub.pmid)
    mentions: List[Tuple[PubTatorMention, str]] = []
    for m in pub.mentions:
        _check_offsets(path, pub, m)
        if label_map is not None:
            if m.type not in label_map:
                report.add("unknown_type", f"{m.text!r} ({m.type}, line {m.line})", detail=m.type)
                continue
            mentions.append((m, label_map[m.type]))
        else:
            mentions.append((m, m.type))
    doc = nlp.make_doc(text)
    if misaligned == "split":
        cuts = {pos for m, _ in mentions for pos in (m.start, m.end)}
        if _needs_split(doc, cuts):
            for m, _ in mentions:
                if doc.char_span(m.start, m.end) is None:
                    report.add("misaligned", f"{m.text!r} (line {m.line})")
            doc = _split_tokens(doc, cuts)
    spans: List[Span] = []
    for m, label in mentions:
        kb_id = "|".join(m.ids)
        span = doc.char_span(m.start, m.end, label=label, kb_id=kb_id)
        if span is None:
            if misaligned == "error":
                raise InputFileError(
                    Errors.E501.format(path=path, line=m.line, start=m.start, end=m.end, text=m.text)
                )
            report.add("misaligned", f"{m.text!r} (line {m.line})")
            if misaligned == "skip":
                continue
            span = doc.char_span(m.start, m.end, label=label, kb_id=kb_id, alignment_mode="expand")
            if span is None:
                continue  # only whitespace: nothing to keep (already counted)
        spans.append(span)
    kept = filter_spans(spans)
    if len(kept) < len(spans):
        kept_set = set(kept)
        for span in spans:
            if span not in kept_set:
                report.add("overlap", f"{span.text!r} [{span.start_char}:{span.end_char}] in {pub.pmid}")
    doc.ents = kept
    doc.user_data[PMID_KEY] = pub.pmid
    report.docs += 1
    report.ents += len(kept)
    return doc


def _check_offsets(path: Path, pub: PubTatorDoc, m: PubTatorMention) -> None:
    text = pub.text
    problem = ""
    if not 0 <= m.start < m.end <= len(text):
        problem = "lies outside the document text"
    elif text[m.start : m.end].strip() != m.text.strip():  # NCBI pads some mention texts
        problem = f"reads {text[m.start:m.end]!r} in the text but {m.text!r} in the mention line"
    if problem:
        raise InputFileError(
            Errors.E504.format(path=path, line=m.line, start=m.start, end=m.end,
                               problem=problem, pmid=pub.pmid, length=len(text))
        )


def _needs_split(doc: Doc, cuts: set) -> bool:
    return any(t.idx < c < t.idx + len(t) for t in doc for c in cuts)


def _split_tokens(doc: Doc, cuts: set) -> Doc:
    """A new doc with the same text whose tokens are also split at ``cuts``."""
    words: List[str] = []
    spaces: List[bool] = []
    for token in doc:
        start, end = token.idx, token.idx + len(token)
        inner = sorted(c for c in cuts if start < c < end)
        bounds = [start, *inner, end]
        for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
            words.append(doc.text[a:b])
            spaces.append(bool(token.whitespace_) if i == len(bounds) - 2 else False)
    return Doc(doc.vocab, words=words, spaces=spaces)
