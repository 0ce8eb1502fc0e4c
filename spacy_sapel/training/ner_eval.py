"""Scores for a pipeline that finds and links entities, on gold docs whose entities
carry kb ids (from :func:`~spacy_sapel.training.pubtator_to_docs` or JSONL):

- **ner**: span precision/recall/F1 overall and per type (spaCy's ``ents_per_type``);
- **linking**: acc@k of each linker on the *gold* mentions (gold spans, no NER errors);
- **joint**: a predicted entity is correct when its span and label match a gold
  mention and its kb id is in that mention's gold id set (gold mentions without an
  id are left out, and predictions on their spans are not counted);
- **speed**: words per second of the whole pipeline and without the linkers.
"""
from __future__ import annotations

import time
from typing import Any, Collection, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from ..kb.ids import kb_id_set, normalize_id
from ..pipeline.linker import CANDIDATES_ATTR, find_linkers
from .evaluate import accuracy_at_k

Key = Tuple[int, int, str]


def pipeline_input(nlp: Language, reference: Doc) -> Union[str, Doc]:
    """What to run the pipeline on to score it against ``reference``, as spaCy's
    corpus reader does for its training evaluation: the text, or, when the
    reference's whitespace is unknown (a corpus converted from token-per-line IOB or
    CoNLL), a new doc of its own words, so that the gold tokenization is kept."""
    if reference.has_unknown_spaces:
        return Doc(nlp.vocab, words=[t.text for t in reference], spaces=[bool(t.whitespace_) for t in reference])
    return reference.text


def words_per_second(
    nlp: Language, inputs: Sequence[Union[str, Doc]], *, disable: Sequence[str] = ()
) -> Tuple[List[Doc], float]:
    """Run the pipeline over ``inputs`` (texts, or docs of given words: copies of
    them are processed, so the inputs can be run again) after one warm-up call, so
    that lazy set-up is not timed; return the docs and the words per second."""
    inputs = [x.copy() if isinstance(x, Doc) else x for x in inputs]
    with nlp.select_pipes(disable=list(disable)):
        if inputs:
            first = inputs[0]
            nlp(first.copy() if isinstance(first, Doc) else first)
        start = time.perf_counter()
        docs = list(nlp.pipe(inputs))
        elapsed = time.perf_counter() - start
    return docs, sum(len(d) for d in docs) / max(elapsed, 1e-9)


def evaluate_pipeline(
    nlp: Language, gold_docs: Sequence[Doc], *, ks: Sequence[int] = (1, 5), speed: bool = True
) -> Dict[str, Any]:
    inputs = [pipeline_input(nlp, doc) for doc in gold_docs]
    linkers = find_linkers(nlp)
    results: Dict[str, Any] = {"docs": len(gold_docs), "gold_ents": sum(len(d.ents) for d in gold_docs)}
    has_ner = "ner" in nlp.pipe_names or any(
        "ents" in nlp.get_pipe_meta(name).assigns or "doc.ents" in nlp.get_pipe_meta(name).assigns
        for name in nlp.pipe_names
    )
    if has_ner:
        preds, wps_all = words_per_second(nlp, inputs)
        results["ner"] = score_ner(preds, gold_docs)
        if linkers:
            linked = None if any(not pipe.labels for _, pipe in linkers) else {
                label for _, pipe in linkers for label in pipe.labels}
            results["joint"] = score_joint(preds, gold_docs, labels=linked)
        if speed:
            results["speed"] = {"words_per_second": wps_all}
            if linkers:
                _, wps_ner = words_per_second(nlp, inputs, disable=[n for n, _ in linkers])
                results["speed"]["words_per_second_without_linker"] = wps_ner
    if linkers:
        results["linking"] = score_gold_linking(nlp, gold_docs, ks=ks)
    return results


def score_ner(preds: Sequence[Doc], gold_docs: Sequence[Doc]) -> Dict[str, Any]:
    """Span P/R/F overall and per type; None (as spaCy's scorer gives) when there is
    nothing to score, i.e. neither gold nor predicted entities."""
    examples = [Example(pred, gold) for pred, gold in zip(preds, gold_docs)]
    scores = Scorer.score_spans(examples, "ents")
    return {
        "p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"],
        "per_type": scores["ents_per_type"] or {},
    }


def score_joint(
    preds: Sequence[Doc], gold_docs: Sequence[Doc], *, labels: Optional[Collection[str]] = None
) -> Dict[str, Any]:
    """Joint NER + linking P/R/F, restricted to ``labels`` (the labels some linker
    links; ``None``: all) so that unlinked types do not count as linking errors."""
    counts: Dict[str, List[int]] = {}  # label -> [tp, n_pred, n_gold]

    def row(label: str) -> List[int]:
        return counts.setdefault(label, [0, 0, 0])

    for pred, gold in zip(preds, gold_docs):
        n_gold, outcomes = joint_outcomes(pred, gold, labels=labels)
        for label, n in n_gold.items():
            row(label)[2] += n
        for ent, right in zip(pred.ents, outcomes):
            if right is not None:
                row(ent.label_)[1] += 1
                row(ent.label_)[0] += right
    per_type = {label: prf_from_counts(*c) for label, c in sorted(counts.items())}
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    return {**prf_from_counts(*total), "per_type": per_type}


def joint_outcomes(
    pred: Doc, gold: Doc, *, labels: Optional[Collection[str]] = None
) -> Tuple[Dict[str, int], List[Optional[bool]]]:
    """What :func:`score_joint` counts in one doc: the gold mentions with an id per
    label (of ``labels``; ``None``: all), and for each predicted entity, in order,
    ``None`` when it is not scored (another label, or the span of a gold mention
    without an id), else whether its span, label and kb id are right."""
    gold_map: Dict[Key, FrozenSet[str]] = {
        (e.start_char, e.end_char, e.label_): kb_id_set(e.kb_id_) for e in gold.ents
    }
    n_gold: Dict[str, int] = {}
    for key, ids in gold_map.items():
        if ids and (labels is None or key[2] in labels):
            n_gold[key[2]] = n_gold.get(key[2], 0) + 1
    outcomes: List[Optional[bool]] = []
    for ent in pred.ents:
        ids = gold_map.get((ent.start_char, ent.end_char, ent.label_))
        if (labels is not None and ent.label_ not in labels) or (ids is not None and not ids):
            outcomes.append(None)
        else:
            outcomes.append(bool(ids) and normalize_id(ent.kb_id_) in ids)
    return n_gold, outcomes


def ner_outcomes(example: Example) -> List[Optional[bool]]:
    """What spaCy's span scorer (:func:`score_ner`) counts of each predicted entity of
    ``example``, in order: ``None`` when it is not counted (its span does not align
    with the reference's tokens), else whether a gold entity has its span and label."""
    gold = {(e.label_, e.start, e.end) for e in example.reference.ents}
    outcomes: List[Optional[bool]] = []
    for ent in example.predicted.ents:
        aligned = example.get_aligned_spans_x2y([ent], allow_overlap=False)
        outcomes.append((aligned[0].label_, aligned[0].start, aligned[0].end) in gold if aligned else None)
    return outcomes


def prf_from_counts(tp: int, n_pred: int, n_gold: int) -> Dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f}


def gold_mention_docs(
    nlp: Language,
    gold_docs: Sequence[Doc],
    *,
    labels: Collection[str] = (),
    keep_nil: bool = False,
) -> Tuple[List[Doc], List[FrozenSet[str]]]:
    """Fresh docs whose entities are the gold mentions (of ``labels``, all when
    empty), and each mention's gold id set in entity order. Mentions without a gold
    id are left out unless ``keep_nil`` (their set is then empty)."""
    docs: List[Doc] = []
    gold_sets: List[FrozenSet[str]] = []
    for gold in gold_docs:
        doc = nlp.make_doc(gold.text)
        pairs = []
        for ent in gold.ents:
            ids = kb_id_set(ent.kb_id_)
            if (not ids and not keep_nil) or (labels and ent.label_ not in labels):
                continue
            span = doc.char_span(ent.start_char, ent.end_char, label=ent.label_, alignment_mode="expand")
            if span is not None:
                pairs.append((span, ids))
        pairs = _non_overlapping(pairs)
        doc.ents = [span for span, _ in pairs]
        gold_sets.extend(ids for _, ids in pairs)
        docs.append(doc)
    return docs, gold_sets


def score_gold_linking(
    nlp: Language, gold_docs: Sequence[Doc], *, ks: Sequence[int] = (1, 5)
) -> Dict[str, Any]:
    """acc@k of each linker on the gold mentions of the labels it links (mentions
    without a gold id are skipped, as in the published evaluations)."""
    out: Dict[str, Any] = {}
    for name, linker in find_linkers(nlp):
        docs, gold_sets = gold_mention_docs(nlp, gold_docs, labels=linker.labels)
        candidates = [
            ent._.get(CANDIDATES_ATTR) or [] for doc in linker.pipe(docs) for ent in doc.ents
        ]
        acc = accuracy_at_k(candidates, gold_sets, linker.kb, ks=ks)
        out[name] = {"mentions": len(gold_sets), **{f"acc@{k}": acc[k] for k in ks}}
    return out


def _non_overlapping(pairs: List[Tuple[Any, FrozenSet[str]]]) -> List[Tuple[Any, FrozenSet[str]]]:
    """Gold spans widened to tokens may collide; keep the first of each overlap."""
    kept, last_end = [], -1
    for span, ids in sorted(pairs, key=lambda p: p[0].start):
        if span.start >= last_end:
            kept.append((span, ids))
            last_end = span.end
    return kept
