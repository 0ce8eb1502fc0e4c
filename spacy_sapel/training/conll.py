"""Token-per-line NER corpora: ``token<TAB>tag`` with a blank line between sentences
(the BioNLP IOB files) and CoNLL-2003 columns ``token POS chunk NER`` with
``-DOCSTART-`` lines (CoNLL++). ``spacy convert -c ner`` reads the first kind but not
CoNLL-2003's ``-DOCSTART- -X- -X- O`` delimiter, and it silently accepts an ``I-``
tag that starts an entity; this reader handles both formats and counts such tags."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ..errors import Errors, InputFileError, Warnings
from ..util import iter_lines, malformed_line
from .report import CorpusReport, check_policy, report_for

DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"^(O|[BI]-\S+)$")
INVALID_TAG_POLICIES = ("fix", "error")

Sentence = List[Tuple[str, str, int]]  # (token, tag, line number)


def read_iob_docs(
    vocab: Vocab,
    path: Path,
    *,
    n_sents: int = 10,
    invalid_tags: str = "fix",
    report: Optional[CorpusReport] = None,
) -> Iterator[Doc]:
    """Yield docs with entities and sentence starts. ``-DOCSTART-`` lines separate
    documents; a file without them is grouped into docs of ``n_sents`` sentences
    (0: the whole file is one doc). The tag is the last column (tab- or
    space-separated). ``invalid_tags``: ``"fix"`` reads an ``I-X`` that does not
    continue an ``X`` entity as its start and counts it (warning W505); ``"error"``
    raises E503."""
    check_policy("invalid_tags policy", invalid_tags, INVALID_TAG_POLICIES)
    path = Path(path)
    own_report = report_for(path, report)
    has_docstart = False
    group: List[Sentence] = []
    sentence: Sentence = []
    n_docs = 0
    for line_no, line in iter_lines(path):
        cols = line.split("\t") if "\t" in line else line.split()
        cols = [c for c in (c.strip() for c in cols) if c] if cols else []
        if not cols:
            if sentence:
                group.append(sentence)
                sentence = []
                if not has_docstart and n_sents and len(group) >= n_sents:
                    yield _make_doc(vocab, path, group, invalid_tags, own_report)
                    n_docs += 1
                    group = []
            continue
        if cols[0] == DOCSTART:
            has_docstart = True
            if sentence:
                group.append(sentence)
                sentence = []
            if group:
                yield _make_doc(vocab, path, group, invalid_tags, own_report)
                n_docs += 1
                group = []
            continue
        if len(cols) < 2:
            raise malformed_line(
                path, line_no, "one column only",
                "'token<TAB>tag' or CoNLL-2003 columns 'token POS chunk tag'", line,
            )
        sentence.append((cols[0], cols[-1], line_no))
    if sentence:
        group.append(sentence)
    if group:
        yield _make_doc(vocab, path, group, invalid_tags, own_report)
        n_docs += 1
    if n_docs == 0:
        raise InputFileError(
            Errors.E502.format(path=path, what="sentences",
                               expected="one 'token<TAB>tag' line per token, a blank line between sentences")
        )
    if report is None:
        own_report.emit(IOB_WARNINGS)


IOB_WARNINGS = {"invalid_tag_sequence": (Warnings.W505, {})}


def _make_doc(
    vocab: Vocab, path: Path, sentences: List[Sentence], invalid_tags: str, report: CorpusReport
) -> Doc:
    words: List[str] = []
    sent_starts: List[bool] = []
    spans: List[Tuple[int, int, str]] = []
    for sentence in sentences:
        offset = len(words)
        for i, (token, tag, line_no) in enumerate(sentence):
            words.append(token)
            sent_starts.append(i == 0)
            if not _TAG.match(tag):
                raise InputFileError(
                    Errors.E503.format(path=path, line=line_no, tag=tag,
                                       problem="is not an IOB tag")
                )
            if tag == "O":
                continue
            prefix, label = tag[0], tag[2:]
            continues = i > 0 and bool(spans) and spans[-1][1] == offset + i and spans[-1][2] == label
            if prefix == "I" and continues:
                start, _, _ = spans.pop()
                spans.append((start, offset + i + 1, label))
                continue
            if prefix == "I":
                if invalid_tags == "error":
                    raise InputFileError(
                        Errors.E503.format(path=path, line=line_no, tag=tag,
                                           problem="does not continue an entity of its type")
                    )
                report.add("invalid_tag_sequence", f"line {line_no} {token!r} {tag}")
            spans.append((offset + i, offset + i + 1, label))
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]
    report.docs += 1
    report.ents += len(spans)
    return doc
