"""Documents from JSONL (``{"text": ..., "ents": [{"start", "end", "label", "kb_id"}]}``)
or plain text (one document per non-empty line), told apart by content."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors, InputFileError, SapelError
from ..util import PathLike, iter_lines, malformed_line

#: ``fail(problem, expected)``: the exception to raise for a bad record
RecordFailure = Callable[[str, str], Exception]
_ENTITY = '{"start": int, "end": int, "label": str, "kb_id": str (optional)}'
INPUT_FORMATS = ("auto", "jsonl", "text")


def read_input_docs(
    nlp: Language, path: Path, *, input_format: str = "auto"
) -> Iterator[Tuple[Doc, bool]]:
    """``(doc, has_ents)`` from JSONL records or from text lines (``has_ents`` False):
    as ``input_format`` says, or with ``"auto"`` as the content says (whatever the
    file's name: ``.json``, ``.ndjson``, ``.JSONL``, gzipped, ...)."""
    if input_format not in INPUT_FORMATS:
        raise SapelError(
            Errors.E506.format(option="input format", value=input_format, options=", ".join(INPUT_FORMATS))
        )
    if input_format == "jsonl" or (input_format == "auto" and is_jsonl(path)):
        return read_jsonl_docs(nlp, path)
    return ((doc, False) for doc in read_text_docs(nlp, path))


def is_jsonl(path: Path) -> bool:
    """Whether the first non-empty line of ``path`` (plain or gzipped) is a JSON
    object. A first line that starts like JSON but is no object on one line (a
    pretty-printed file, a JSON array) is refused rather than read as text."""
    path = Path(path)
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            problem = f"invalid JSON ({err.msg})"
            record = None
        else:
            problem = f"a JSON {type(record).__name__}, not an object"
        if isinstance(record, dict):
            return True
        if line.lstrip().startswith(("{", "[")):
            raise InputFileError(Errors.E508.format(path=path, line=line_no, problem=problem))
        return False
    return False


def read_jsonl_docs(nlp: Language, path: Path) -> Iterator[Tuple[Doc, bool]]:
    """Yield ``(doc, has_ents)``: tokenized docs with the record's entities (and gold
    kb ids) set when the record has an ``ents`` list."""
    path = Path(path)
    for line_no, line in iter_lines(path):
        if line.strip():
            yield doc_from_input_line(nlp, line, input_format="jsonl", source=path, line_no=line_no)


def doc_from_input_line(
    nlp: Language, line: str, *, input_format: str, source: object, line_no: Optional[int] = None
) -> Tuple[Doc, bool]:
    """``(doc, has_ents)`` from one line of a ``"jsonl"`` or ``"text"`` input, as
    :func:`read_input_docs` reads it (for readers that get lines, not a file: Ray's).
    A bad record names ``source`` and ``line_no``, or the record when the line
    number is not known."""
    if input_format == "text":
        return nlp.make_doc(line), False

    def fail(problem: str, expected: str) -> Exception:
        if line_no is None:
            return record_error(source, line, problem, expected)
        return malformed_line(source, line_no, problem, expected, line)

    return doc_from_jsonl_line(nlp, line, fail=fail)


def record_error(path: PathLike, record: str, problem: str, expected: str) -> InputFileError:
    """The E002 error for a JSONL record read without its line number (Ray Data reads
    lines in parallel): the number is that of the first line of ``path`` that is the
    record, found when the error is raised, or "?" when ``path`` cannot be read."""
    return malformed_line(path, _find_line(path, record) or "?", problem, expected, record)


def _find_line(path: PathLike, record: str) -> Optional[int]:
    containing = None
    try:
        for number, line in iter_lines(path):
            if line == record:
                return number
            if containing is None and record in line:
                containing = number  # Ray splits lines on U+2028 and friends too
    except InputFileError:
        return None
    return containing


def doc_from_jsonl_line(nlp: Language, line: str, *, fail: RecordFailure) -> Tuple[Doc, bool]:
    """``(doc, has_ents)`` from one JSONL record, checked strictly: each entity needs
    integer character offsets inside the text on token boundaries and a non-empty
    string label; ``fail`` makes the exception (naming the file and line) to raise."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise fail(f"invalid JSON ({err.msg})", "one JSON object per line") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise fail("no string field 'text'", '{"text": "...", "ents": [...]}')
    text = record["text"]
    doc = nlp.make_doc(text)
    ents = record.get("ents")
    if ents is None:
        return doc, False
    if not isinstance(ents, list):
        raise fail(f"'ents' is {ents!r}", f"a list of entities {_ENTITY}")
    spans = []
    for ent in ents:
        if not isinstance(ent, dict) or not {"start", "end", "label"} <= set(ent):
            raise fail(f"entity {ent!r} lacks start, end or label", _ENTITY)
        start, end, label, kb_id = ent["start"], ent["end"], ent["label"], ent.get("kb_id")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not (
            0 <= start < end <= len(text)
        ):
            raise fail(
                f"entity {ent!r} has offsets {start!r}:{end!r}",
                f"integer character offsets 0 <= start < end <= {len(text)} (the text's length)",
            )
        if not isinstance(label, str) or not label.strip():
            raise fail(f"entity {ent!r} has label {label!r}", "a non-empty string label")
        if kb_id is not None and not isinstance(kb_id, str):
            raise fail(f"entity {ent!r} has kb_id {kb_id!r}", "a string kb_id (or none)")
        span = doc.char_span(start, end, label=label, kb_id=kb_id or "")
        if span is None:
            raise fail(
                f"entity [{start}:{end}] {text[start:end]!r} does not align with token "
                "boundaries of the tokenizer",
                "entity offsets on token boundaries",
            )
        spans.append(span)
    try:
        doc.ents = spans
    except ValueError as err:
        raise fail(f"overlapping entities ({err})", "non-overlapping entity spans") from None
    return doc, True


def read_text_docs(nlp: Language, path: Path) -> Iterator[Doc]:
    """One tokenized doc per non-empty line of a UTF-8 text file."""
    for _, line in iter_lines(path):
        if line.strip():
            yield nlp.make_doc(line)
