"""The ``sapel_abbreviation_ents`` component: an abbreviation defined in the text
("butylated hydroxyanisole (BHA)") names what its long form names, so wherever the
short form occurs in the doc it is an entity of the long form's label.

The ``ner`` reads each mention in its window; a short form far from its definition
("In groups given 2% BHA, ...") carries little evidence of its own and is missed or
given the other label. Put this component after the ``ner`` (and before a
``sapel_linker``): it finds the definitions with :func:`collect_abbreviations`, keeps
them on ``doc._.sapel_abbreviations``, and for each short form whose long form the
``ner`` recognised

- adds an entity at each occurrence of the short form that no entity touches;
- relabels an entity that is exactly the short form but has another label;
- leaves an occurrence inside a longer entity as it is.

A short form whose long form is not an entity, or with fewer than two upper-case
letters ("Tanui (Kenya)" is no definition), is left to the ``ner``. No weights: the
component is configuration only and ``nlp.to_disk`` saves nothing for it."""

from typing import Dict, Iterable, List, Sequence, Tuple

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span

from ..errors import Errors, SapelError
from .abbreviations import OFFSETS_ATTR, collect_abbreviations, install_abbreviation_extension, set_abbreviations

ShortForm = Tuple[str, ...]
# upper-case letters a short form needs before its long form's label is passed on:
# "(BHA)", "(cAMP)", "(5-HT)" are abbreviations, "(Kenya)" and "(three days)" are not,
# though Schwartz & Hearst's letter matching may find them a "long form"
MIN_CAPITALS = 2


@Language.factory(
    "sapel_abbreviation_ents",
    requires=["doc.ents"],
    assigns=["doc.ents", f"doc._.{OFFSETS_ATTR}"],
    default_config={"labels": []},
)
def make_abbreviation_ents(nlp: Language, name: str, labels: List[str]) -> "AbbreviationEnts":
    return AbbreviationEnts(nlp, name, labels=labels)


class AbbreviationEnts(Pipe):
    """Give every occurrence of a defined short form its long form's entity label.
    ``labels``: the long-form labels that are passed on (empty: all)."""

    def __init__(self, nlp: Language, name: str = "sapel_abbreviation_ents", *, labels: Sequence[str] = ()) -> None:
        if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) and label for label in labels):
            raise SapelError(Errors.E346.format(name=name, value=labels))
        self.vocab = nlp.vocab
        self.name = name
        self.cfg = {"labels": list(labels)}
        install_abbreviation_extension()

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    def __call__(self, doc: Doc) -> Doc:
        definitions = collect_abbreviations(doc)
        set_abbreviations(doc, definitions)
        short_forms = long_form_labels(doc, definitions, self.labels)
        if short_forms:
            doc.ents = label_short_forms(doc, short_forms)
        return doc


def long_form_labels(doc: Doc, definitions: Iterable[Tuple[Span, Span]], labels: Sequence[str] = ()) -> Dict[ShortForm, str]:
    """Short form (its token texts) -> the label of the entity that its long form is.
    That entity ends where the long form ends and starts inside it: in
    "heparin-induced thrombocytopenia (HIT)" the ``ner`` finds "thrombocytopenia",
    and "HIT" names the disease. The first definition of a short form whose long form
    is an entity (of one of ``labels``, when given) counts; a short form with fewer
    than ``MIN_CAPITALS`` upper-case letters is not passed a label."""
    by_end = {ent.end: ent for ent in doc.ents}
    result: Dict[ShortForm, str] = {}
    for short, long in definitions:
        key = tuple(token.text for token in short)
        if key in result or sum(c.isupper() for c in short.text) < MIN_CAPITALS:
            continue
        ent = by_end.get(long.end)
        if ent is None or ent.start < long.start:
            continue
        if not labels or ent.label_ in labels:
            result[key] = ent.label_
    return result


def label_short_forms(doc: Doc, short_forms: Dict[ShortForm, str]) -> List[Span]:
    """The doc's entities with each occurrence of a short form (exact token texts)
    labelled: new where no entity touches it, relabelled where an entity is exactly
    it, unchanged inside a longer entity."""
    ents = {(ent.start, ent.end): ent for ent in doc.ents}
    covered = [False] * len(doc)
    for ent in doc.ents:
        covered[ent.start : ent.end] = [True] * len(ent)
    by_first: Dict[str, List[ShortForm]] = {}
    for key in short_forms:
        by_first.setdefault(key[0], []).append(key)
    for token in doc:
        for key in by_first.get(token.text, ()):
            start, end = token.i, token.i + len(key)
            if end > len(doc) or tuple(t.text for t in doc[start:end]) != key:
                continue
            label = short_forms[key]
            old = ents.get((start, end))
            if old is not None:
                if old.label_ != label:
                    ents[(start, end)] = Span(doc, start, end, label=label, kb_id=old.kb_id, span_id=old.id)
            elif not any(covered[start:end]):
                ents[(start, end)] = Span(doc, start, end, label=label)
                covered[start:end] = [True] * (end - start)
    return sorted(ents.values(), key=lambda span: span.start)
