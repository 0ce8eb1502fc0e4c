"""Why SAP on a vocabulary lowers this base model's synonym accuracy (issue 15, item 2):
short SAP runs on a vocabulary's synonym pairs that each change one setting of
``configs/sap.cfg``, all scored on the same held-out concepts (2% of them, seed 0)
every ``--eval-every`` steps: synonym acc@1 (each held-out name finds a name of its own
concept among all held-out names), overall and for the pairs with and without digits
(numbered names such as "Diabetes Mellitus, Type 2", "Bardet-Biedl Syndrome 4").

Variants: ``base`` (``configs/sap.cfg``: lr 2e-5, 5% warm-up, 64 pairs a batch, random
batches, names cut at 25 tokens, the model's mean pooling); ``lr5e-6``; ``lr1e-5``;
``hard`` (batches of neighbouring concepts); ``len64`` (names cut at 64 tokens);
``no-digits`` (training pairs with a digit in either name left out); ``cls`` (CLS
pooling, SapBERT's).

By hand, not CI; one run at a time on a small machine:

    python benchmarks/sap_ablation.py --data-dir ../shared/data --steps 300 --eval-every 100
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
from wasabi import msg

from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.sap.pairs import PairSet, SynonymPair, kb_pairs, split_validation
from spacy_sapel.sap.loop import check_sap_output
from spacy_sapel.sap.trainer import SapConfig, SapTrainer, synonym_hits
from spacy_sapel.util import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent
BASE = {"lr": 2e-5, "warmup_ratio": 0.05, "batch_size": 64, "batching": "random", "seed": 42}
# name: (SapConfig changes, encoder options, leave out pairs with digits)
VARIANTS: Dict[str, tuple] = {
    "base": ({}, {"max_length": 25}, False),
    "lr5e-6": ({"lr": 5e-6}, {"max_length": 25}, False),
    "lr1e-5": ({"lr": 1e-5}, {"max_length": 25}, False),
    "hard": ({"batching": "hard"}, {"max_length": 25}, False),
    "len64": ({}, {"max_length": 64}, False),
    "no-digits": ({}, {"max_length": 25}, True),
    "cls": ({}, {"max_length": 25, "pooling": "cls"}, False),
}
DIGIT = re.compile(r"\d")


def has_digit(pair: SynonymPair) -> bool:
    return bool(DIGIT.search(pair.left) or DIGIT.search(pair.right))


def held_out_accuracy(encoder: SapEncoder, pairs: Sequence[SynonymPair]) -> Dict[str, float]:
    """The trainer's synonym acc@1 on ``pairs``, overall and for the pairs with and
    without a digit (the same search, split afterwards)."""
    hits = synonym_hits(encoder, pairs)
    digits = np.array([has_digit(p) for p in pairs])
    return {"all": float(hits.mean()), "digits": float(hits[digits].mean()),
            "no digits": float(hits[~digits].mean())}


class ScoringTrainer(SapTrainer):
    """SapTrainer whose validation is :func:`held_out_accuracy` (split by digits)."""

    def _validate(self, history: List[Dict[str, Any]], step: int) -> None:
        if self.validation:
            scores = held_out_accuracy(self.encoder, self.validation)
            history.append({"step": step, **{f"val {k}": v for k, v in scores.items()}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--vocab", default="ctd-medic-2017/CTD_diseases.tsv.gz")
    parser.add_argument("--reader", default="ctd")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "output" / "sap_ablation")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--max-validation-pairs", type=int, default=2000)
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or args.steps < 1 or args.eval_every < 1:
        raise SystemExit(f"unknown variants {unknown} (known: {', '.join(VARIANTS)}) or steps/eval-every < 1")
    for name in variants:  # a folder that is not an earlier run's output is refused before any work
        check_sap_output(args.out_dir / name)
    kb = read_kb([str(args.data_dir / args.vocab)], args.reader)
    train, val = split_validation(kb_pairs(kb, max_pairs_per_concept=50, seed=0), fraction=0.02, seed=0)
    val_pairs = val.pairs[: args.max_validation_pairs]
    n_digits = sum(has_digit(p) for p in train.pairs)
    msg.info(f"{len(train)} training pairs ({n_digits} with a digit, {100 * n_digits / len(train):.1f}%); "
             f"{len(val_pairs)} held-out pairs of {len({p.label for p in val_pairs})} concepts "
             f"({sum(has_digit(p) for p in val_pairs)} with a digit)")
    rows, results = [], {}
    for name in variants:
        changes, encoder_options, drop_digits = VARIANTS[name]
        pairs = PairSet([p for p in train.pairs if not has_digit(p)], train.source) if drop_digits else train
        config = SapConfig(**{**BASE, **changes, "max_steps": args.steps, "checkpoint_every": args.eval_every})
        encoder = SapEncoder.from_pretrained(DEFAULT_ENCODER, device="cpu", **encoder_options)
        out = args.out_dir / name
        start = time.perf_counter()
        trainer = ScoringTrainer(encoder, pairs, out, config=config, validation=PairSet(val_pairs, "held out"))
        trainer.train(show_progress=False)
        seconds = time.perf_counter() - start
        history = [h for h in json.loads((out / "training.json").read_text())["history"] if "val all" in h]
        results[name] = {"settings": {**dataclasses.asdict(config), **encoder_options, "drop_digits": drop_digits},
                         "seconds": seconds, "curve": history}
        for h in history:
            rows.append([name, h["step"], f"{h['val all']:.4f}", f"{h['val digits']:.4f}", f"{h['val no digits']:.4f}",
                         f"{seconds:.0f}" if h is history[-1] else ""])
        msg.info(f"{name}: {seconds:.0f} s")
    msg.table(rows, header=("variant", "step", "held-out acc@1", "with digits", "without digits", "seconds"), divider=True)
    atomic_write_bytes(args.out_dir / "results.json", json.dumps(results, indent=2).encode("utf8"))


if __name__ == "__main__":
    main()
