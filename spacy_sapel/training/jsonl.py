"""Documents from JSONL (``{"text": ..., "ents": [{"start", "end", "label", "kb_id"}]}``)
or plain text (one document per non-empty line)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors
from ..util import iter_lines


def read_jsonl_docs(nlp: Language, path: Path) -> Iterator[Tuple[Doc, bool]]:
    """Yield ``(doc, has_ents)``: tokenized docs with the record's entities (and gold
    kb ids) set when the record has an ``ents`` list."""
    path = Path(path)
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        record = _parse(path, line_no, line)
        doc = nlp.make_doc(record["text"])
        ents = record.get("ents")
        if ents is None:
            yield doc, False
            continue
        spans = []
        for ent in ents:
            if not isinstance(ent, dict) or not {"start", "end", "label"} <= set(ent):
                raise ValueError(
                    Errors.E500.format(
                        path=path,
                        line=line_no,
                        problem=f"entity {ent!r} lacks start, end or label",
                        expected='{"start": int, "end": int, "label": str}',
                    )
                )
            span = doc.char_span(
                ent["start"], ent["end"], label=ent["label"], kb_id=ent.get("kb_id") or ""
            )
            if span is None:
                raise ValueError(
                    Errors.E501.format(
                        path=path,
                        line=line_no,
                        start=ent["start"],
                        end=ent["end"],
                        text=record["text"][ent["start"] : ent["end"]],
                    )
                )
            spans.append(span)
        try:
            doc.ents = spans
        except ValueError as err:
            raise ValueError(
                Errors.E500.format(
                    path=path,
                    line=line_no,
                    problem=f"overlapping entities ({err})",
                    expected="non-overlapping entity spans",
                )
            ) from None
        yield doc, True


def read_text_docs(nlp: Language, path: Path) -> Iterator[Doc]:
    """One tokenized doc per non-empty line of a UTF-8 text file."""
    for _, line in iter_lines(path):
        if line.strip():
            yield nlp.make_doc(line)


def _parse(path: Path, line_no: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(
            Errors.E500.format(
                path=path, line=line_no, problem=f"invalid JSON ({err.msg})",
                expected="one JSON object per line",
            )
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ValueError(
            Errors.E500.format(
                path=path, line=line_no, problem="no string field 'text'",
                expected='{"text": "...", "ents": [...]}',
            )
        )
    return record
