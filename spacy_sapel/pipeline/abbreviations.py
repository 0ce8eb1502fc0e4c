"""Abbreviation definitions in running text ("Wilson disease (WD)"), found with the
Schwartz & Hearst (2003) algorithm, so that the linker can link a short form through
its long form as well as by itself."""
import re
from typing import Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

ABBREVIATIONS_ATTR = "sapel_abbreviations"
# scispaCy's AbbreviationDetector: short-form Spans with ``span._.long_form`` (or, with
# its make_serializable option, dicts of token offsets); read as input, never written
SCISPACY_ATTR = "abbreviations"
SCISPACY_LONG_FORM_ATTR = "long_form"
# token offsets [short_start, short_end, long_start, long_end] of each definition: plain
# ints, so docs with abbreviations survive Doc.to_bytes, DocBin and nlp.pipe(n_process>1)
OFFSETS_ATTR = "sapel_abbreviation_offsets"
MAX_SHORT_FORM_CHARS = 10
MAX_PAREN_TOKENS = 10
# tokens looked at before a "(": twice the widest long-form window (15 words for a
# 10-character short form), room for punctuation and space tokens, so that the work
# per parenthesis is bounded when a doc has no (or very long) sentences
MAX_LOOKBACK_TOKENS = 2 * (MAX_SHORT_FORM_CHARS + 5)
# the words of a long form whose initials an undefined short form spells ("/" joins
# alternatives, "Duchenne/Becker muscular dystrophy": each has a word of its own)
_WORD_SPLIT = re.compile(r"[\s\-/]+")


def install_abbreviation_extension() -> None:
    """``doc._.sapel_abbreviations``: ``[(short_form_span, long_form_span), ...]``
    (None when no linker looked for them), read from the serialisable token offsets
    that :func:`set_abbreviations` stores. scispaCy's ``doc._.abbreviations`` is not
    ours to register (see :func:`scispacy_abbreviations`)."""
    if not Doc.has_extension(OFFSETS_ATTR):
        Doc.set_extension(OFFSETS_ATTR, default=None)
    if not Doc.has_extension(ABBREVIATIONS_ATTR):
        Doc.set_extension(ABBREVIATIONS_ATTR, getter=_get_abbreviations)


def _get_abbreviations(doc: Doc) -> Optional[List[Tuple[Span, Span]]]:
    offsets = doc._.get(OFFSETS_ATTR)
    if offsets is None:
        return None
    return [(doc[a:b], doc[c:d]) for a, b, c, d in offsets]


def set_abbreviations(doc: Doc, definitions: List[Tuple[Span, Span]]) -> None:
    """Record the definitions found in ``doc`` (see :func:`install_abbreviation_extension`)."""
    doc._.set(OFFSETS_ATTR, [[s.start, s.end, lf.start, lf.end] for s, lf in definitions])


def is_short_form(text: str) -> bool:
    """A plausible abbreviation: 2–10 characters, at most two words, starting with a
    letter or digit and containing a letter."""
    return (
        2 <= len(text) <= MAX_SHORT_FORM_CHARS
        and len(text.split()) <= 2
        and text[0].isalnum()
        and any(c.isalpha() for c in text)
    )


def best_long_form(short: str, candidate: str) -> Optional[str]:
    """The shortest tail of ``candidate`` whose characters contain those of ``short``
    in order, the first one starting a word (Schwartz & Hearst's ``findBestLongForm``),
    or None when there is none."""
    s, c = len(short) - 1, len(candidate) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while c >= 0 and (
            candidate[c].lower() != char or (s == 0 and c > 0 and candidate[c - 1].isalnum())
        ):
            c -= 1
        if c < 0:
            return None
        c -= 1
        s -= 1
    start = candidate.rfind(" ", 0, c + 1) + 1
    return candidate[start:]


def _long_form_window(n_short_chars: int) -> int:
    return min(n_short_chars + 5, n_short_chars * 2)


def _definition(doc: Doc, short: Span, before: Span) -> Optional[Tuple[Span, Span]]:
    """Match ``short`` against the words of ``before`` (the text preceding it)."""
    if not is_short_form(short.text):
        return None
    window = _long_form_window(len(short.text))
    words = [t for t in before if not t.is_space][-window:]
    if not words:
        return None
    region = doc[words[0].i : words[-1].i + 1]
    long_text = best_long_form(short.text, region.text)
    if long_text is None or len(long_text) <= len(short.text):
        return None
    start = region.end_char - len(long_text)
    long_span = doc.char_span(start, region.end_char, alignment_mode="expand")
    if long_span is not None and long_span[0].text == "(" and (
        long_span.text.count("(") > long_span.text.count(")")
    ):
        # "Atm (ataxia-telangiectasia (AT) ...": the "(" opens an outer parenthesis
        long_span = long_span[1:]
    if not long_span or short.text.lower() in {t.lower_ for t in long_span}:
        return None
    if len(long_span) > window:
        return None
    return short, long_span


def find_abbreviations(doc: Doc) -> List[Tuple[Span, Span]]:
    """Definitions ``long form (short form)`` and ``short form (long form)`` in the
    doc, each as ``(short_span, long_span)``, within one sentence when sentence
    boundaries are set. Before each parenthesis at most ``MAX_LOOKBACK_TOKENS``
    tokens are examined, so the work is linear in the length of the doc."""
    found: List[Tuple[Span, Span]] = []
    i = 0
    while i < len(doc):
        if doc[i].text != "(":
            i += 1
            continue
        close = _closing_parenthesis(doc, i)
        if close is None or close == i + 1 or doc[close].text != ")":
            # none near, "()", a nested "(" (the scan restarts there) or a ")" glued
            # inside a token ("(ISPH)-induced"): no definition in this parenthesis
            i = close if close is not None and doc[close].text == "(" else i + 1
            continue
        sent_start = _window_start(doc, i)
        inside = doc[i + 1 : close]
        # "(WD; see below)" -> "WD"
        cut = next((t.i for t in inside if t.text in {";", ","}), None)
        if cut is not None:
            inside = doc[i + 1 : cut]
        definition = None
        if len(inside) and len(inside.text.split()) <= 2:
            definition = _definition(doc, inside, doc[sent_start:i])
        if definition is None and i > sent_start and len(inside):
            # "WD (Wilson disease)": the short form stands before the parenthesis
            definition = _definition(doc, doc[i - 1 : i], inside)
        if definition is not None:
            found.append(definition)
        i = close + 1
    return found


def _closing_parenthesis(doc: Doc, i: int) -> Optional[int]:
    """The first token after the "(" at ``i`` (at most ``MAX_PAREN_TOKENS`` on) that
    ends its parenthesis: a ")", a nested "(" token, or a token whose ")" closes it
    from inside (the tokenizer keeps "ISPH)-induced" whole). Brackets opened inside
    tokens ("bis-(2", "chloroethyl)-1") are balanced first. None when there is none."""
    depth = 0
    for j in range(i + 1, min(i + 1 + MAX_PAREN_TOKENS, len(doc))):
        text = doc[j].text
        if text == "(" or (text == ")" and depth == 0):
            return j
        depth += text.count("(") - text.count(")")
        if depth < 0:
            return j
    return None


def _window_start(doc: Doc, i: int) -> int:
    """The start of the text before token ``i`` that may hold a long form: the
    sentence's start (the doc's without sentence boundaries), or at most
    ``MAX_LOOKBACK_TOKENS`` tokens back."""
    start = max(0, i - MAX_LOOKBACK_TOKENS)
    return next((j for j in range(i, start, -1) if doc[j].is_sent_start), start)


def short_form_map(definitions: List[Tuple[Span, Span]]) -> Dict[str, str]:
    """Short-form text -> long-form text; the first definition of a short form wins."""
    result: Dict[str, str] = {}
    for short, long in definitions:
        result.setdefault(short.text, long.text)
    return result


def scispacy_abbreviations(doc: Doc) -> List[Tuple[Span, Span]]:
    """The ``(short_span, long_span)`` pairs that scispaCy's AbbreviationDetector put in
    ``doc._.abbreviations``: Spans with ``span._.long_form``, or the offset dicts of its
    ``make_serializable`` mode. Empty when the extension is not registered; items of
    another shape (another library's use of the name) are not definitions and are
    passed over."""
    if not Doc.has_extension(SCISPACY_ATTR):
        return []
    pairs = []
    has_long_form = Span.has_extension(SCISPACY_LONG_FORM_ATTR)
    for item in doc._.get(SCISPACY_ATTR) or []:
        if isinstance(item, Span) and has_long_form:
            long = item._.get(SCISPACY_LONG_FORM_ATTR)
            if isinstance(long, Span):
                pairs.append((doc[item.start : item.end], doc[long.start : long.end]))
        elif isinstance(item, dict) and {"short_start", "short_end", "long_start", "long_end"} <= item.keys():
            pairs.append((doc[item["short_start"] : item["short_end"]], doc[item["long_start"] : item["long_end"]]))
    return pairs


def collect_abbreviations(doc: Doc) -> List[Tuple[Span, Span]]:
    """scispaCy's definitions when its detector ran on the doc, then those
    :func:`find_abbreviations` finds; one pair per short-form span, scispaCy's first."""
    pairs: Dict[Tuple[int, int], Tuple[Span, Span]] = {}
    for short, long in scispacy_abbreviations(doc) + find_abbreviations(doc):
        pairs.setdefault((short.start, short.end), (short, long))
    return list(pairs.values())


def looks_like_abbreviation(text: str) -> bool:
    """A short form worth expanding without a definition: one word of letters and
    digits (:func:`is_short_form`) with at least two upper-case letters or digits
    ("OAB", "HIT", "G6PD", "EDDs"), so that ordinary words never qualify."""
    return (
        is_short_form(text)
        and text.isalnum()
        and sum(c.isupper() or c.isdigit() for c in text) >= 2
    )


def spells(short: str, long_text: str) -> bool:
    """Whether ``short`` abbreviates ``long_text`` strictly: its characters, in order,
    are the initials of all the long form's words (split at spaces, hyphens and
    slashes; at least two), each word's initial matched and any other character taken
    from inside the word before it ("OAB" <- "overactive bladder"); case is ignored.
    A trailing lower-case "s" after an upper-case letter or digit is a plural
    ("EDDs"), not a letter to spell."""
    words = [w for w in (w.lstrip("([") for w in _WORD_SPLIT.split(long_text.lower())) if w]
    if len(short) > 2 and short[-1] == "s" and not short[-2].islower():
        short = short[:-1]
    return len(words) >= 2 and _spells(short.lower(), words)


def _spells(short: str, words: List[str]) -> bool:
    if len(short) < len(words) or short[0] != words[0][0]:
        return False
    seen = set()

    def match(s: int, w: int, c: int) -> bool:
        # short[:s] matched; the last match is in words[w], before position c
        if s == len(short):
            return w == len(words) - 1
        if (s, w, c) in seen:
            return False
        seen.add((s, w, c))
        if w + 1 < len(words) and words[w + 1][0] == short[s] and match(s + 1, w + 1, 1):
            return True
        k = words[w].find(short[s], c)
        while k != -1:
            if match(s + 1, w, k + 1):
                return True
            k = words[w].find(short[s], k + 1)
        return False

    return match(1, 0, 1)


def implicit_long_forms(texts: Sequence[str]) -> Dict[str, str]:
    """Undefined short forms among ``texts`` (a doc's mention strings, in order) ->
    the first other mention string that they spell (:func:`spells`): "OAB" in a doc
    that also mentions "overactive bladder"."""
    result: Dict[str, str] = {}
    by_initial: Dict[str, List[str]] = {}
    for text in dict.fromkeys(texts):
        if text:
            by_initial.setdefault(text[0].lower(), []).append(text)
    for text in dict.fromkeys(texts):
        if not looks_like_abbreviation(text):
            continue
        long_text = next(
            (t for t in by_initial.get(text[0].lower(), []) if t != text and spells(text, t)),
            None,
        )
        if long_text is not None:
            result[text] = long_text
    return result
