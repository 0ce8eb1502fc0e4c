"""spacy_sapel against scispaCy's linker, in one run on the same machine and data.

NCBI-disease development gold mentions linked against CTD MEDIC (2012), with the
NCBI-disease training mentions added as aliases for both linkers. Each side runs in
a fresh process (scispaCy's in the interpreter given by ``--scispacy-python``, a venv
where scispaCy is installed): KB/index build seconds, mentions/second through the
pipeline, peak RSS of that process, acc@1/acc@5 (correct when any id of a top-k
distinct concept is in the gold id set). Ours once per configuration
``RUNTIME:INDEX`` (an encoder runtime and an index type; ``torch:flat``, float32 and
exact search, is the accuracy reference). Neither side resolves abbreviations:
mention string in, candidates out.

    python benchmarks/vs_scispacy.py --data-dir ../shared/data \\
        --scispacy-python /work/venvs/scispacy/bin/python \\
        [--configs torch:flat,torch:hnsw,onnx-int8:hnsw] [--index-option ef_search=512]
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import spacy
import typer
from wasabi import msg

from spacy_sapel.cli._util import parse_options
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.encoder.runtimes import RUNTIMES
from spacy_sapel.index import DenseIndex
from spacy_sapel.kb.ids import kb_id_set
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.training import accuracy_at_k
from spacy_sapel.training.mentions import add_mention_aliases
from spacy_sapel.training.pubtator_docs import pubtator_to_docs

HERE = Path(__file__).parent
MEDIC = Path("medic-2012/medic_06Jul2012.txt")
TRAIN = Path("ncbi-disease/NCBItrainset_corpus.txt")
DEV = Path("ncbi-disease/NCBIdevelopset_corpus.txt")
#: within this many points of float32 exact search's acc@1, a configuration counts as accurate
ACC_MARGIN = 0.005

def _kb(data_dir: Path):
    kb = read_kb(data_dir / MEDIC, "medic", name="medic-2012")
    add_mention_aliases(kb, data_dir / TRAIN)
    return kb


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with medic-2012/ and ncbi-disease/"),
    scispacy_python: Optional[Path] = typer.Option(None, help="Python of a venv with scispaCy (its side is skipped without it)"),
    scispacy_result: Optional[Path] = typer.Option(None, help="A scispacy.json of an earlier run on this machine, used instead of running scispaCy's side again (the report says so)"),
    configs: str = typer.Option(",".join(f"{r}:flat" for r in RUNTIMES), help="Comma-separated configurations of ours, RUNTIME:INDEX (encoder runtime: " + ", ".join(RUNTIMES) + "; index type: flat, hnsw, ivf, ...)"),
    index_option: List[str] = typer.Option([], "--index-option", help="Index option as key=value for the non-flat indexes (e.g. ef_search=512); repeatable"),
    work_dir: Path = typer.Option(Path("benchmarks/output/vs_scispacy"), help="Where the exchanged files go"),
    report_only: bool = typer.Option(False, help="Measure nothing: print the table of the results already in --work-dir (an interrupted run)"),
) -> None:
    for config in configs.split(","):  # before scispaCy's build, which takes minutes
        _index_plan(config, index_option)
    work_dir.mkdir(parents=True, exist_ok=True)
    kb = _kb(data_dir)
    msg.info(f"MEDIC + NCBI training aliases: {len(kb)} concepts, {kb.n_names} names")
    nlp = spacy.blank("en")
    docs = list(pubtator_to_docs(nlp, data_dir / DEV))
    gold = [kb_id_set(ent.kb_id_) for doc in docs for ent in doc.ents]
    with (work_dir / "docs.jsonl").open("w", encoding="utf8") as f:
        for doc in docs:
            ents = [[e.start_char, e.end_char, e.label_] for e in doc.ents]
            f.write(json.dumps({"text": doc.text, "ents": ents}) + "\n")
    with (work_dir / "kb.jsonl").open("w", encoding="utf8") as f:
        for concept in kb:
            f.write(json.dumps({"concept_id": concept.concept_id,
                                "canonical_name": concept.canonical_name,
                                "aliases": list(concept.aliases),
                                "types": list(concept.types)}) + "\n")
    rows: List[Dict[str, Any]] = []
    if report_only:
        for name in ["scispacy"] + [f"ours_{_slug(c)}" for c in configs.split(",")]:
            path = work_dir / f"{name}.json"
            if not path.is_file():
                msg.warn(f"No result {path}: left out")
                continue
            row = json.loads(path.read_text(encoding="utf8"))
            row["label"] = ("scispaCy (TF-IDF + HNSW)" if name == "scispacy"
                            else f"spacy_sapel {row['config']}")
            rows.append(row)
    elif scispacy_result is not None:
        row = json.loads(scispacy_result.read_text(encoding="utf8"))
        row["label"] = "scispaCy (TF-IDF + HNSW)"
        msg.warn(f"scispaCy figures reused from {scispacy_result}, not measured in this run")
        rows.append(row)
    elif scispacy_python is not None:
        rows.append(_run([str(scispacy_python), str(HERE / "_scispacy_side.py"), str(work_dir)],
                         work_dir / "scispacy.json", "scispaCy (TF-IDF + HNSW)"))
    for config in [] if report_only else configs.split(","):
        out = work_dir / f"ours_{_slug(config)}.json"
        options = [arg for option in index_option for arg in ("--index-option", option)]
        rows.append(_run([sys.executable, __file__, "ours", str(data_dir), str(work_dir),
                          config, *options], out, f"spacy_sapel {config}"))
    for row in rows:
        row["acc"] = accuracy_at_k(row["candidates"], gold, kb, ks=(1, 5))
    _report(rows, len(gold))


def _run(command: List[str], out: Path, label: str) -> Dict[str, Any]:
    msg.info(f"{label}: {' '.join(command)}")
    start = time.strftime("%H:%M:%S", time.gmtime())
    subprocess.run(command, check=True)
    row = json.loads(out.read_text(encoding="utf8"))
    row["label"] = label
    msg.info(f"{label}: ran {start}-{time.strftime('%H:%M:%S', time.gmtime())} UTC")
    return row


def _slug(config: str) -> str:
    return config.replace(":", "_")


def _parse_config(config: str) -> Tuple[str, str]:
    runtime, _, index_type = config.partition(":")
    if runtime not in RUNTIMES or not index_type:
        raise typer.BadParameter(f"{config!r}: expected RUNTIME:INDEX, RUNTIME one of {', '.join(RUNTIMES)}")
    return runtime, index_type


def _index_plan(config: str, index_option: List[str]) -> Tuple[str, str, Dict[str, Any]]:
    """``(runtime, index type, index options)`` of one configuration, checked as
    ``build-kb`` checks them (the options apply to the non-flat indexes)."""
    runtime, index_type = _parse_config(config)
    options = {} if index_type == "flat" else parse_options(index_option)
    DenseIndex.from_options(index_type, options)
    return runtime, index_type, options


def ours(
    data_dir: Path,
    work_dir: Path,
    config: str,
    index_option: List[str] = typer.Option([], "--index-option"),
) -> None:
    """One configuration of ours, in a process of its own (for its peak RSS)."""
    runtime, index_type, options = _index_plan(config, index_option)
    kb = _kb(data_dir)
    start = time.perf_counter()
    encoder = SapEncoder.from_pretrained(runtime=runtime, device="cpu")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    linker_kb = LinkerKB.build(kb, encoder, index_type=index_type, index_options=options)
    build_s = time.perf_counter() - start
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("sapel_linker", config={"top_k": 5, "abbreviations": False})
    linker.set_kb(lambda: linker_kb)
    docs = list(pubtator_to_docs(nlp, data_dir / DEV))
    n_mentions = sum(len(doc.ents) for doc in docs)
    start = time.perf_counter()
    docs = list(nlp.pipe(docs, batch_size=64))
    link_s = time.perf_counter() - start
    candidates = [ent._.kb_candidates for doc in docs for ent in doc.ents]
    result = {
        "config": config,
        "index": linker_kb.index.meta,
        "build_s": build_s,
        "encoder_load_s": load_s,
        "link_s": link_s,
        "n_mentions": n_mentions,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "candidates": candidates,
    }
    (work_dir / f"ours_{_slug(config)}.json").write_text(json.dumps(result), encoding="utf8")


def _report(rows: List[Dict[str, Any]], n_mentions: int) -> None:
    base = next((r for r in rows if r["label"].startswith("scispaCy")), None)
    table = []
    for row in rows:
        speed = row["n_mentions"] / row["link_s"]
        ratios = ("", "")
        if base is not None and row is not base:
            ratios = (f"{speed / (base['n_mentions'] / base['link_s']):.2f}x",
                      f"{row['build_s'] / base['build_s']:.2f}x")
        load = f"{row['encoder_load_s']:.1f}" if "encoder_load_s" in row else ""
        table.append((row["label"], f"{row['build_s']:.1f}", load, f"{speed:.0f}",
                      f"{row['peak_rss_mb']:.0f}", f"{row['acc'][1]:.3f}",
                      f"{row['acc'][5]:.3f}", *ratios))
    msg.table(table, header=("linker", "KB build s", "encoder load s", "mentions/s", "peak RSS MB",
                             "acc@1", "acc@5", "speed vs scispaCy", "build vs scispaCy"),
              divider=True)
    msg.info(f"{n_mentions} NCBI-disease development gold mentions; KB build: embedding "
             "+ indexing (scispaCy: TF-IDF + HNSW); encoder load: reading the model and "
             "making its runtime (ONNX export, quantization); speed ratio: ours / "
             "scispaCy mentions/s (bar >= 0.5x); build ratio: ours / scispaCy seconds "
             "(bar <= 0.2x)")
    # float32 torch with exact search, else float32 ONNX (the same vectors to ~1e-7)
    fp32 = next((r for label in ("spacy_sapel torch:flat", "spacy_sapel onnx:flat") for r in rows
                 if r["label"] == label), None)
    if fp32 is not None:
        accurate = [r for r in rows if r["label"].startswith("spacy_sapel")
                    and r["acc"][1] >= fp32["acc"][1] - ACC_MARGIN]
        fastest = max(accurate, key=lambda r: r["n_mentions"] / r["link_s"])
        msg.info(f"Fastest configuration within {ACC_MARGIN * 100:.1f} point of float32 exact acc@1 "
                 f"({fp32['label']}): {fastest['label']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["ours"]:  # one configuration of ours, started by main()
        sys.argv.pop(1)
        typer.run(ours)
    else:
        typer.run(main)
