"""Write a small synthetic NER + linking training corpus for the project's demo:
sentences from templates filled with the names of the shipped example KB
(``spacy_sapel/example/diseases.jsonl``), each entity with its concept id.

    python scripts/make_demo_corpus.py spacy_sapel/example/diseases.jsonl \
        corpus/demo_train.spacy --n-sents 400 --seed 0
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import List, Tuple

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

TEMPLATES = [
    "The patient was diagnosed with {a}.",
    "A history of {a} was noted on admission.",
    "{A} is a frequent complication of {b}.",
    "She presented with {a} and was later treated for {b}.",
    "No signs of {a} were found.",
    "Patients with {a} have a higher risk of {b}.",
    "We report a case of {a} in a 45-year-old woman.",
    "The drug was stopped because of {a}.",
    "His father died of {a}.",
    "Screening for {a} is recommended in adults with {b}.",
    "The trial enrolled 120 patients with {a}.",
    "Treatment reduced the incidence of {a} but not of {b}.",
    "Symptoms of {a} include fatigue and weight loss.",
    "The study found no link between {a} and {b}.",
]
FILLERS = [
    "The follow-up visit was scheduled for next month.",
    "Blood tests were normal.",
    "The results are discussed below.",
    "Informed consent was obtained from all participants.",
]
LABEL = "DISEASE"


def load_names(path: Path) -> List[Tuple[str, str]]:
    names = []
    for line in path.read_text(encoding="utf8").splitlines():
        if line.strip():
            record = json.loads(line)
            for name in [record["canonical_name"], *record.get("aliases", [])]:
                names.append((name, record["concept_id"]))
    return names


def make_sentence(rng: random.Random, names: List[Tuple[str, str]]) -> Tuple[str, List[Tuple[int, int, str]]]:
    template = rng.choice(TEMPLATES + FILLERS[:1])
    slots = {}
    for key in ("a", "b"):
        name, cid = rng.choice(names)
        slots[key] = (name, cid)
    text, ents, pos = "", [], 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            text += template[pos:]
            break
        text += template[pos:start]
        key = template[start + 1]
        name, cid = slots[key.lower()]
        if key.isupper():
            name = name[0].upper() + name[1:]
        ents.append((len(text), len(text) + len(name), cid))
        text += name
        pos = start + 3
    return text, ents


def main(
    kb_path: Path = typer.Argument(..., exists=True, dir_okay=False),
    output: Path = typer.Argument(...),
    n_sents: int = typer.Option(400, "--n-sents"),
    sents_per_doc: int = typer.Option(4, "--sents-per-doc"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    rng = random.Random(seed)
    names = load_names(kb_path)
    nlp = spacy.blank("en")
    docbin = DocBin(store_user_data=True)
    n_ents = 0
    for _ in range(0, n_sents, sents_per_doc):
        parts, ents = [], []
        offset = 0
        for _ in range(sents_per_doc):
            sentence, sent_ents = make_sentence(rng, names)
            if rng.random() < 0.2:
                sentence = f"{sentence} {rng.choice(FILLERS)}"
            ents += [(s + offset, e + offset, cid) for s, e, cid in sent_ents]
            parts.append(sentence)
            offset += len(sentence) + 1
        doc = nlp.make_doc(" ".join(parts))
        spans = [doc.char_span(s, e, label=LABEL, kb_id=cid, alignment_mode="expand") for s, e, cid in ents]
        doc.ents = spacy.util.filter_spans([s for s in spans if s is not None])
        n_ents += len(doc.ents)
        docbin.add(doc)
    output.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(output)
    msg.good(f"Wrote {output}: {len(docbin)} docs, {n_ents} entities from {len(names)} names")


if __name__ == "__main__":
    typer.run(main)
