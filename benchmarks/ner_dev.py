"""NER on development data, as issue 17 asks for it: span P/R/F overall and per type
for each NER variant, + linking as evidence (the linker's veto), the learning curve of
each training run and its minutes.

Variants (each ``spacy train`` of a config on the set's training corpus, evaluated
every ``--eval-every`` steps on the full development corpus; the best checkpoint is
scored):

- ``trf``: ``configs/ner_trf.cfg`` (the packaged all-MiniLM-L6-v2 + ``ner``);
- ``trf_vocab``: ``configs/ner_trf_vocab.cfg``, the same with KB-aware NER's vocabulary
  feature, the names of the set's vocabulary (CTD MEDIC) read at initialization;
- ``trf_chars``: ``configs/ner_trf_chars.cfg``, the transformer's vectors with lexical
  hash features (NORM, PREFIX, SUFFIX, SHAPE) beside them.

Each variant is scored without and with ``sapel_abbreviation_ents`` (a defined short
form takes its long form's entity label; no weights, so a pipeline trained without it
gets it added after its ``ner``).

Sets: ``bc5cdr`` (Chemical, Disease; vocabulary CTD MEDIC 2017), ``ncbi`` (the four
mention types as Disease, as ``project.yml`` converts them; MEDIC 2012) and ``conllpp``
(CoNLL++, four general-domain types; no vocabulary, so ``trf`` only).

Linking as evidence: the trained NER and ``sapel_abbreviation_ents`` followed by
``sapel_linker`` on the set's Disease KB (the vocabulary + the training corpus's
mentions as aliases and priors, built once into ``--out-dir``); ``veto_threshold``
chosen by 2-fold cross-fitting over the development documents (the threshold with the
best NER F, or in a second row the best joint NER + linking F, on one half is scored on
the other half; the two halves' counts are added), so the rows are not tuned on what
they score.

    python benchmarks/ner_dev.py --data-dir ../shared/data --sets bc5cdr \\
        --variants trf,trf_vocab --steps 1000 --eval-every 250 [--veto]

A variant whose ``--out-dir`` folder already holds ``model-best`` is not trained again
(its saved curve is printed); ``--pipeline NAME=DIR`` scores a pipeline trained
elsewhere on the first set (no curve).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import spacy
from spacy.tokens import Doc, DocBin
from spacy.util import load_config, registry
from wasabi import msg

ROOT = Path(__file__).resolve().parent.parent
NCBI_LABELS = ["SpecificDisease=Disease", "DiseaseClass=Disease", "Modifier=Disease", "CompositeMention=Disease"]

# name: (train, dev, convert options, vocabulary + reader, or None)
SETS: Dict[str, Tuple[str, str, List[str], Optional[Tuple[str, str]]]] = {
    "bc5cdr": ("bc5cdr/CDR_TrainingSet.PubTator.txt", "bc5cdr/CDR_DevelopmentSet.PubTator.txt", [],
               ("ctd-medic-2017/CTD_diseases.tsv.gz", "ctd")),
    "ncbi": ("ncbi-disease/NCBItrainset_corpus.txt", "ncbi-disease/NCBIdevelopset_corpus.txt",
             [arg for label in NCBI_LABELS for arg in ("--label", label)],
             ("medic-2012/medic_06Jul2012.txt", "medic")),
    "conllpp": ("conllpp/conllpp_train.txt", "conllpp/conllpp_dev.txt", ["--format", "conll"], None),
}
VARIANTS = {"trf": "configs/ner_trf.cfg", "trf_vocab": "configs/ner_trf_vocab.cfg",
            "trf_chars": "configs/ner_trf_chars.cfg"}
LINKED = "Disease"
ABBREVIATIONS = "sapel_abbreviation_ents"
CURVE = "curve.jsonl"


@registry.loggers("sapel_bench.curve_logger.v1")
def create_curve_logger(path: str, progress_bar: Any = None) -> Callable:
    """spaCy's console logger, plus one JSON line per evaluation in ``path``: the step,
    the seconds since training started, P/R/F and the per-type scores. (``progress_bar``
    is ignored: the configs' logger block sets it.)"""
    console = registry.loggers.get("spacy.ConsoleLogger.v3")(progress_bar=None)

    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        log_step, finalize = console(nlp, stdout, stderr)
        start = time.perf_counter()
        out = open(path, "a", encoding="utf8")

        def log(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is None:
                return
            other = info["other_scores"]
            row = {"step": info["step"], "seconds": round(time.perf_counter() - start, 1),
                   **{k: other.get(f"ents_{k}") for k in ("p", "r", "f")},
                   "per_type": other.get("ents_per_type") or {}}
            out.write(json.dumps(row) + "\n")
            out.flush()

        def close() -> None:
            finalize()
            out.close()

        return log, close

    return setup


def convert(data_dir: Path, rel: str, options: List[str], out: Path) -> Path:
    if not out.exists():
        subprocess.run([sys.executable, "-m", "spacy_sapel", "convert", str(data_dir / rel), "--output", str(out),
                        *options], check=True)
    return out


def train(variant: str, set_name: str, corpora: Tuple[Path, Path], vocab: Optional[Tuple[Path, str]],
          out: Path, steps: int, eval_every: int) -> None:
    """``spacy train`` with the curve logger; nothing when ``out`` holds model-best."""
    if (out / "model-best").is_dir():
        msg.info(f"{set_name} {variant}: trained already in {out}")
        return
    (out / CURVE).unlink(missing_ok=True)
    overrides = [
        "--paths.train", str(corpora[0]), "--paths.dev", str(corpora[1]),
        "--training.max_steps", str(steps), "--training.eval_frequency", str(eval_every),
        "--training.patience", "0",
        "--training.logger.@loggers", "sapel_bench.curve_logger.v1", "--training.logger.path", str(out / CURVE),
    ]
    config_path = ROOT / VARIANTS[variant]
    if variant == "trf_vocab":
        # the vocabulary file itself instead of a KB directory: a whole new loader
        # block (a command-line override would keep the kb-dir loader's `path`)
        config = load_config(config_path, interpolate=False)
        config["initialize"]["components"]["sapel_vocab_tagger"]["names_loader"] = {
            "@misc": "sapel.vocab_names_from_reader.v1", "paths": [str(vocab[0])], "reader": vocab[1], "types": []}
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "config_in.cfg"
        config.to_disk(config_path)
    msg.info(f"{set_name} {variant}: training {steps} steps into {out}")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spacy", "train", str(config_path), "--output", str(out),
                    "--code", __file__, *overrides], check=True)
    msg.good(f"{set_name} {variant}: {(time.perf_counter() - start) / 60:.1f} minutes")


def read_curve(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()] if path.exists() else []


def kb_dir(data_dir: Path, set_name: str, out_dir: Path) -> Path:
    """The set's Disease KB: vocabulary + training mentions as aliases and priors."""
    train_rel, _, _, vocab = SETS[set_name]
    out = out_dir / f"kb_{set_name}"
    if not out.is_dir():
        subprocess.run([sys.executable, "-m", "spacy_sapel", "build-kb", str(data_dir / vocab[0]), "--reader", vocab[1],
                        "-o", str(out), "--train-mentions", str(data_dir / train_rel)]
                       + (["--train-mention-type", LINKED] if set_name == "bc5cdr" else []), check=True)
    return out


def score_with_and_without(nlp, gold: Sequence[Doc], name: str) -> List[Dict[str, Any]]:
    """NER scores of ``nlp`` with component ``name`` off, then on. The pipeline runs
    once with it off; the component then runs on copies of those docs (it reads only
    their entities), so the transformer is not run twice."""
    from spacy_sapel.training.ner_eval import pipeline_input, score_ner

    start = time.perf_counter()
    with nlp.select_pipes(disable=[name]):
        preds = list(nlp.pipe(pipeline_input(nlp, doc) for doc in gold))
    seconds = time.perf_counter() - start
    component = nlp.get_pipe(name)
    start = time.perf_counter()
    after = [component(doc.copy()) for doc in preds]
    results = [score_ner(preds, gold), score_ner(after, gold)]
    results[0]["seconds"] = seconds
    results[1]["seconds"] = seconds + time.perf_counter() - start
    return results


def veto_cross_fit(nlp, gold: Sequence[Doc]) -> Dict[str, Any]:
    """The veto chosen on one half of the docs and scored on the other, both ways,
    counts added, once for each objective of ``calibrate-veto`` (best NER F, best
    joint F); the veto-off scores of the same run beside them."""
    from spacy_sapel.training.calibrate import VETO_OBJECTIVES, best_veto, veto_outcomes

    halves = [list(gold[0::2]), list(gold[1::2])]
    outcomes = [veto_outcomes(nlp, half, "sapel_linker") for half in halves]
    offs = [o.curve([None])[0] for o in outcomes]
    result: Dict[str, Any] = {"off": _pool(offs)}
    for objective in VETO_OBJECTIVES:
        chosen = [best_veto(o.curve(), objective).threshold for o in outcomes]
        points = [outcomes[1].curve([chosen[0]])[0], outcomes[0].curve([chosen[1]])[0]]
        result[objective] = {"thresholds": chosen, **_pool(points)}
    return result


def _pool(points) -> Dict[str, Any]:
    """The points of the two halves -> P/R/F of their added counts (overall, per
    type, joint)."""
    from spacy_sapel.training.ner_eval import prf_from_counts

    per_label: Dict[str, np.ndarray] = {}
    for point in points:
        for label, counts in point.ner_counts.items():
            per_label[label] = per_label.get(label, np.zeros(3, dtype=int)) + counts
    joint = sum(np.asarray(point.joint_counts) for point in points)
    return {
        "ner": prf_from_counts(*sum(per_label.values())),
        "per_type": {label: prf_from_counts(*c) for label, c in sorted(per_label.items())},
        "joint": prf_from_counts(*joint),
        "dropped": sum(p.dropped for p in points),
        "dropped_right": sum(p.dropped_right for p in points),
    }


def with_linker(nlp, kb: Path):
    """``nlp`` (already scored alone) with a Disease ``sapel_linker`` on ``kb`` added."""
    nlp.add_pipe("sapel_linker", config={"labels": [LINKED]})
    nlp.get_pipe("sapel_linker").initialize(kb_loader=registry.misc.get("sapel.load_kb_dir.v1")(kb))
    return nlp


def fmt(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "output" / "ner")
    parser.add_argument("--sets", default="bc5cdr", help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated, of {', '.join(VARIANTS)} (default: all; none with --pipeline)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--veto", action="store_true", help="also score + linking as evidence (Disease)")
    parser.add_argument("--pipeline", action="append", default=[], metavar="NAME=DIR",
                        help="score a pipeline trained elsewhere on the first set (repeatable)")
    args = parser.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if args.variants is None:
        # --pipeline alone scores what it names; it does not also train every variant
        args.variants = "" if args.pipeline else ",".join(VARIANTS)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [s for s in sets if s not in SETS] + [v for v in variants if v not in VARIANTS]
    extra = [p for p in args.pipeline if "=" not in p or not Path(p.partition("=")[2]).is_dir()]
    if unknown or extra or args.steps < 1 or args.eval_every < 1 or not sets:
        raise SystemExit(f"unknown sets or variants {unknown}, pipelines not NAME=DIR {extra}, or steps < 1; "
                         f"expected sets of {list(SETS)}, variants of {list(VARIANTS)}")
    for set_name in sets:
        for rel in SETS[set_name][:2]:
            if not (args.data_dir / rel).exists():
                raise SystemExit(f"missing {args.data_dir / rel}: expected the shared data folder (--data-dir)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows: List[List[str]] = []
    curves: List[Tuple[str, List[Dict[str, Any]]]] = []
    for i, set_name in enumerate(sets):
        train_rel, dev_rel, options, vocab = SETS[set_name]
        corpora = (convert(args.data_dir, train_rel, options, args.out_dir / f"{set_name}_train.spacy"),
                   convert(args.data_dir, dev_rel, options, args.out_dir / f"{set_name}_dev.spacy"))
        runs: List[Tuple[str, Path]] = []
        for variant in variants:
            if variant == "trf_vocab" and vocab is None:
                msg.warn(f"{set_name}: no vocabulary, {variant} skipped")
                continue
            out = args.out_dir / f"{set_name}_{variant}_{args.steps}"
            train(variant, set_name, corpora, None if vocab is None else (args.data_dir / vocab[0], vocab[1]),
                  out, args.steps, args.eval_every)
            runs.append((f"{variant} {args.steps} steps", out / "model-best"))
            curves.append((f"{set_name} {variant}", read_curve(out / CURVE)))
        if i == 0:
            runs += [(name, Path(path)) for name, _, path in (p.partition("=") for p in args.pipeline)]
        for name, pipeline in runs:
            nlp = spacy.load(pipeline)
            if ABBREVIATIONS not in nlp.pipe_names:
                # a pipeline trained before the configs had it: the component has no
                # weights, so adding it gives what the configs now assemble
                nlp.add_pipe(ABBREVIATIONS, after="ner")
            gold = list(DocBin().from_disk(corpora[1]).get_docs(nlp.vocab))
            for title, s in zip(("", f" + {ABBREVIATIONS}"), score_with_and_without(nlp, gold, ABBREVIATIONS)):
                rows.append([set_name, name + title, fmt(s["p"]), fmt(s["r"]), fmt(s["f"]),
                             " ".join(f"{label} {fmt(v['f'])}" for label, v in sorted(s["per_type"].items())), "", "",
                             f"{s['seconds']:.0f}"])
            if args.veto and vocab is not None:
                cross = veto_cross_fit(with_linker(nlp, kb_dir(args.data_dir, set_name, args.out_dir)), gold)
                for key, title in (("off", "+ linker, veto off"), ("ner", "+ linking evidence (by NER F)"),
                                   ("joint", "+ linking evidence (by joint F)")):
                    v = cross[key]
                    rows.append([set_name, f"{name} + {ABBREVIATIONS} {title}", fmt(v["ner"]["p"]), fmt(v["ner"]["r"]), fmt(v["ner"]["f"]),
                                 " ".join(f"{label} {fmt(v['per_type'][label]['f'])}" for label in sorted(v["per_type"])),
                                 fmt(v["joint"]["f"]),
                                 "" if key == "off" else f"{v['dropped']} ({v['dropped_right']} right) at "
                                 + " / ".join("off" if t is None else f"{t:.3f}" for t in v["thresholds"]), ""])
    msg.table(rows, header=("set", "NER", "P", "R", "F", "F per type", f"joint {LINKED} F", "vetoed", "dev s"),
              divider=True)
    for name, curve in curves:
        if curve:
            msg.table([[r["step"], f"{r['seconds'] / 60:.1f}", fmt(r["p"]), fmt(r["r"]), fmt(r["f"]),
                        " ".join(f"{label} {fmt(v['f'])}" for label, v in sorted(r["per_type"].items()))]
                       for r in curve], header=(f"{name}: step", "minutes", "P", "R", "F", "F per type"), divider=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
