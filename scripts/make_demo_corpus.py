"""Write a small synthetic NER + linking training corpus for the project's demo:
sentences from templates filled with the names of the shipped example KB
(``spacy_sapel/example/diseases.jsonl``), each entity with its concept id.

The sentences vary what an NER trained on them must learn to leave out of an entity
or to split: modifiers before a name ("severe", "poorly controlled"), short forms
defined in parentheses ("cystic fibrosis (CF)") and used again later, coordinated
names, names followed by a verb or used as a noun modifier ("asthma patients"),
spelling variants and plurals, and noun phrases that are not diseases (symptoms,
measurements, outcomes, "disorders of iron metabolism") as negatives.

    python scripts/make_demo_corpus.py spacy_sapel/example/diseases.jsonl \
        corpus/demo_train.spacy --n-sents 400 --seed 0
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Set, Tuple

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

LABEL = "DISEASE"
# Slots: {E} a disease mention (maybe with a modifier outside the entity), {L} two or
# three coordinated mentions, {S} a short form defined earlier in the document (else a
# mention), {D} a definition "long form (short form)", two entities, {N} a noun phrase
# that is not a disease, {P} a plain disease name without a modifier.
TEMPLATES = [
    "The patient was diagnosed with {E}.",
    "A history of {E} was noted on admission.",
    "{E} is a frequent complication of {P}.",
    "She presented with {N} and was later treated for {E}.",
    "No signs of {E} were found.",
    "Patients with {E} have a higher risk of {E}.",
    "We report a case of {E} in a 45-year-old woman.",
    "The drug was stopped because of {E}.",
    "His brother died of {E} at the age of 70.",
    "Screening for {E} is recommended in adults with {L}.",
    "The cohort included 120 adults with {L}.",
    "Treatment reduced the incidence of {E} but not of {E}.",
    "Symptoms of {E} include {N} and {N}.",
    "The study found no link between {E} and {E}.",
    "{D} is a rare condition; {S} is usually diagnosed in childhood.",
    "In {D}, the first signs are {N} and {N}.",
    "We studied {D} in 300 patients; {S} was confirmed in 41 of them.",
    "{D} was present in a third of the cohort.",
    "Early treatment of {S} prevents {E}.",
    "Untreated {S} may progress to {E}.",
    "Most {S} patients also had {E}.",
    "{P} patients were excluded from the trial.",
    "The number of {P} cases rose in winter.",
    "{E} remains a major cause of {N} worldwide.",
    "{E} affects {N} and {N}.",
    "{E} usually develops after years of {E}.",
    "Adults with {E} frequently go on to develop {L}.",
    "People living with {P} commonly experience {N}.",
    "{E} and {E} often occur together.",
    "{L} were the most common diagnoses.",
    "The rates of {L} were similar in both groups.",
    "{E} can lead to {E}, {N} and {N}.",
    "A family history of {E} or {E} was recorded.",
    "Neither {E} nor {E} was associated with {N}.",
    "{N} is common in elderly people with {E}.",
    "{E} is a disorder of {N} that leads to {E}.",
    "Changes in {N} were observed in {E}.",
    "Both {P} and {P} are linked to {N}.",
    "Her {N} improved, and {E} did not recur.",
    "The risk of {E} is higher in smokers.",
    "{L} remain common causes of {N} in this region.",
    "Left untreated, {S} leads to {E}.",
    "{E} results in {N} within weeks.",
    "{E} progresses slowly over many years.",
    "{E} occurs more often in men than in women.",
    "{L} are among the conditions listed above.",
    "{E} causes {N} in about half of the patients.",
    "In {S}, {N} declines over time.",
    "{E} rarely presents before the age of 40.",
    "{E} became less frequent after vaccination was introduced.",
]
FILLERS = [
    "The follow-up visit was scheduled for next month.",
    "Blood tests were normal.",
    "The results are discussed below.",
    "Informed consent was obtained from all participants.",
    "{N} was measured at baseline and after six months.",
    "The main outcome was {N}.",
    "Levels of {N} did not differ between the groups.",
    "{N} and {N} were recorded at each visit.",
    "Patients were asked about {N}.",
    "These are inherited disorders of {N}.",
]
# before a mention, outside the entity
MODIFIERS = [
    "severe", "mild", "acute", "untreated", "advanced", "recurrent", "early",
    "poorly controlled", "well-controlled", "newly diagnosed", "long-standing",
    "suspected", "confirmed", "seasonal", "hospital-acquired", "late-onset",
    "early-onset", "treatment-resistant", "progressive", "uncomplicated",
]
# noun phrases that are not diseases: symptoms, measurements, processes, outcomes,
# general words for illness
NEGATIVES = [
    "glucose metabolism", "iron metabolism", "lipid metabolism", "bone metabolism",
    "liver function", "kidney function", "lung function", "blood pressure",
    "blood glucose", "heart rate", "body weight", "cholesterol levels", "serum creatinine",
    "insulin therapy", "dialysis", "physical activity", "smoking", "alcohol use",
    "hospital admission", "hospitalisation", "hospitalization", "mortality", "death",
    "disability", "quality of life", "healthcare costs", "sick leave",
    "abdominal pain", "back pain", "joint pain", "shortness of breath", "fatigue",
    "cough", "nausea", "dizziness", "weight loss", "palpitations", "swollen ankles",
    "morning stiffness", "night sweats", "sudden chest discomfort",
    "rare disorders", "inherited conditions", "chronic illnesses", "genetic disorders",
    "common diseases", "infections", "the immune system", "the nervous system",
    "red blood cells", "the liver", "older patients", "young adults", "children",
]
# spelling variants applied to whole words
SPELLINGS = [
    ("tumor", "tumour"), ("anemia", "anaemia"), ("hemophilia", "haemophilia"),
    ("hyperglycemia", "hyperglycaemia"), ("hypoglycemia", "hypoglycaemia"),
    ("type 1", "type I"), ("type 2", "type II"), ("Type 1", "Type I"), ("Type 2", "Type II"),
]
# interchangeable head nouns of tumour names ("breast cancer", "breast tumour")
TUMOUR_HEADS = ["cancer", "tumor", "tumour", "carcinoma", "neoplasm"]
# head nouns that take a plural "s"
COUNTABLE = {"tumor", "tumour", "neoplasm", "carcinoma", "infarction", "infarct",
             "accident", "attack", "infection", "injury", "disorder", "cancer", "seizure"}

Ents = List[Tuple[int, int, str]]


@dataclass
class Vocabulary:
    """The KB's names per concept, its short forms and the long forms they abbreviate."""

    names: List[Tuple[str, str]]
    shorts: List[Tuple[str, str, str]]  # (short form, long form, concept id)
    proper_words: Set[str] = field(default_factory=set)  # capitalised in a synonym


def is_short_form(name: str) -> bool:
    return " " not in name and 2 <= len(name) <= 6 and sum(c.isupper() for c in name) >= 2


def initials(name: str) -> str:
    """"cystic fibrosis" -> "CF"; "" when the name is not 2-4 plain words."""
    words = name.split()
    if not 2 <= len(words) <= 4 or not all(w.isalpha() for w in words):
        return ""
    return "".join(w[0].upper() for w in words)


def uninvert(name: str) -> str:
    """MeSH headings in running-text order: "Renal Insufficiency, Chronic" ->
    "Chronic Renal Insufficiency"."""
    head, sep, qualifier = name.partition(", ")
    return f"{qualifier} {head}" if sep else name


def load_vocabulary(path: Path) -> Vocabulary:
    names: List[Tuple[str, str]] = []
    shorts: List[Tuple[str, str, str]] = []
    records = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    for record in records:
        cid = record["concept_id"]
        concept = [uninvert(record["canonical_name"]), *record.get("aliases", [])]
        names += [(name, cid) for name in concept]
        longs = [n for n in concept if not is_short_form(n)]
        for name in concept:
            if is_short_form(name):
                shorts += [(name, long, cid) for long in longs]
        for long in longs:
            short = initials(long)
            if short and short.lower() not in {n.lower() for n in concept}:
                shorts.append((short, long, cid))
    proper = {w for record in records for a in record.get("aliases", []) for w in a.split() if not w.islower()}
    return Vocabulary(names, shorts, proper)


def surface(rng: random.Random, name: str, vocab: Vocabulary) -> str:
    """A spelling of ``name`` as it may occur in text: Title Case words lowered unless
    a synonym capitalises them too ("Wilson"), British or American spelling, roman type
    numbers, "Parkinson's disease" as "Parkinsons disease" or "Parkinson's", tumour
    names with another head noun or as "carcinoma of the lung", plurals."""
    if rng.random() < 0.7:
        name = " ".join(w if w in vocab.proper_words else w.lower() for w in name.split())
    for a, b in SPELLINGS:
        if rng.random() < 0.5:
            a, b = b, a
        name = re.sub(rf"\b{re.escape(a)}\b", b, name)
    if "'s" in name and rng.random() < 0.5:
        name = rng.choice([name.replace("'s", "s"), name.split("'s")[0] + "'s", name.split("'s")[0] + "s"])
    words = name.split()
    if len(words) == 2 and words[1].lower() in TUMOUR_HEADS and rng.random() < 0.5:
        # "lung cancer" -> "lung carcinoma", "carcinoma of the lung"
        head = rng.choice(TUMOUR_HEADS)
        name = f"{head} of the {words[0]}" if rng.random() < 0.4 else f"{words[0]} {head}"
    last = name.split()[-1]
    if last.lower() in COUNTABLE and rng.random() < 0.3:
        name = name[:-1] + "ies" if last.endswith("y") else name + "s"
    return name


class Sentence:
    """Text and entity offsets built piece by piece."""

    def __init__(self) -> None:
        self.text = ""
        self.ents: Ents = []

    def add(self, piece: str, cid: str = "") -> None:
        if cid:
            self.ents.append((len(self.text), len(self.text) + len(piece), cid))
        self.text += piece


def fill(rng: random.Random, template: str, vocab: Vocabulary, defined: List[Tuple[str, str]]) -> Sentence:
    """One sentence from ``template``; ``defined`` holds the short forms the document
    has defined so far (a {D} slot adds to it, {S} reuses it)."""
    out = Sentence()
    for piece in re.split(r"(\{[EPLSDN]\})", template):
        slot = piece[1:-1] if re.fullmatch(r"\{[EPLSDN]\}", piece) else ""
        if not slot:
            out.add(piece)
        elif slot in "EP":
            mention(rng, out, vocab, modifier=slot == "E")
        elif slot == "L":
            n = rng.choice([2, 2, 3])
            for i in range(n):
                if i:
                    out.add(" and " if i == n - 1 and rng.random() < 0.7 else (" or " if i == n - 1 else ", "))
                mention(rng, out, vocab, modifier=True)
        elif slot == "S" and defined:
            out.add(*rng.choice(defined))
        elif slot == "S":
            mention(rng, out, vocab, modifier=False)
        elif slot == "D":
            short, long, cid = rng.choice(vocab.shorts)
            if rng.random() < 0.85:
                out.add(surface(rng, long, vocab), cid)
                out.add(" (")
                out.add(short, cid)
                out.add(")")
            else:
                out.add(short, cid)
                out.add(" (")
                out.add(surface(rng, long, vocab), cid)
                out.add(")")
            defined.append((short, cid))
        else:
            out.add(rng.choice(NEGATIVES))
    if out.text[:1].islower():
        out.text = out.text[0].upper() + out.text[1:]
    return out


def mention(rng: random.Random, out: Sentence, vocab: Vocabulary, *, modifier: bool) -> None:
    if modifier and rng.random() < 0.3:
        out.add(rng.choice(MODIFIERS) + " ")
    name, cid = rng.choice(vocab.names)
    out.add(surface(rng, name, vocab), cid)


def make_doc_text(rng: random.Random, vocab: Vocabulary, n_sents: int) -> Tuple[str, Ents]:
    defined: List[Tuple[str, str]] = []
    parts: List[str] = []
    ents: Ents = []
    offset = 0
    for _ in range(n_sents):
        template = rng.choice(TEMPLATES) if rng.random() < 0.8 else rng.choice(FILLERS)
        sentence = fill(rng, template, vocab, defined)
        ents += [(s + offset, e + offset, cid) for s, e, cid in sentence.ents]
        parts.append(sentence.text)
        offset += len(sentence.text) + 1
    return " ".join(parts), ents


def main(
    kb_path: Path = typer.Argument(..., exists=True, dir_okay=False),
    output: Path = typer.Argument(...),
    n_sents: int = typer.Option(400, "--n-sents"),
    sents_per_doc: int = typer.Option(4, "--sents-per-doc"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    rng = random.Random(seed)
    vocab = load_vocabulary(kb_path)
    nlp = spacy.blank("en")
    docbin = DocBin(store_user_data=True)
    n_ents = n_skipped = 0
    for _ in range(0, n_sents, sents_per_doc):
        text, ents = make_doc_text(rng, vocab, sents_per_doc)
        doc = nlp.make_doc(text)
        spans = [doc.char_span(s, e, label=LABEL, kb_id=cid) for s, e, cid in ents]
        if any(span is None for span in spans):
            # an entity off the token boundaries would train a wrong boundary
            n_skipped += 1
            continue
        doc.ents = spans
        n_ents += len(doc.ents)
        docbin.add(doc)
    output.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(output)
    msg.good(f"Wrote {output}: {len(docbin)} docs, {n_ents} entities from {len(vocab.names)} names "
             f"and {len(vocab.shorts)} short forms; skipped for an entity off token boundaries: {n_skipped}")


if __name__ == "__main__":
    typer.run(main)
