"""Scale figures, side by side in one run (issue 4). By hand, not in CI:

    flock /tmp/sapel-heavy.lock python benchmarks/scale.py --data-dir ../shared/data

Sections (``--sections``, comma-separated; all by default):

- ``ann``: ANN index types vs exact (``flat``) search on >= 1M synthetic clustered unit
  vectors and on the MEDIC alias embeddings (default MiniLM, cached as .npy under
  ``--output-dir``), queries = NCBI-disease dev mention strings: recall@10, queries per
  second, build seconds, bytes per vector.
- ``load``: ``spacy.load`` seconds and peak RSS (fresh process) of a pipeline whose KB
  has 1M synthetic names (vectors: the synthetic ones), minus the same pipeline with a
  1k-name KB (the encoder, spaCy and torch); ``--probe-python`` times it in other
  installs too (e.g. one without scikit-learn, which the test extra brings).
- ``linker``: linker mentions/second on the NCBI-disease dev abstracts (gold mentions,
  MEDIC KB) through ``nlp.pipe`` (batch dedup + LRU cache + length bucketing) vs a naive
  loop (each doc's mentions encoded in input order, no dedup, no cache).
- ``ner``: words/second of NER + linker vs NER alone (``configs/ner_trf.cfg``,
  untrained unless ``--ner`` names a trained pipeline; gold mentions replace the
  untrained NER's entities before the linker so that it links a realistic number).
- ``ray``: ``annotate_ray`` with 2 actors vs one process (the ``link`` command's code)
  on the NCBI-disease train + dev abstracts; the outputs are compared.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import faiss
import numpy as np
import spacy
import srsly
import typer
from spacy.language import Language
from spacy.tokens import Doc
from wasabi import msg

from spacy_sapel.training.pubtator_docs import pubtator_to_docs
from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.index import DenseIndex
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.training import read_pubtator

DIM = 384
LOAD_PROBE = """
import sys, time


def status(key):
    # VmHWM / VmRSS of this process in MB (ru_maxrss would include the parent's peak:
    # Linux keeps it across fork + exec)
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) / 1024


t = time.perf_counter()
import spacy
import_s = time.perf_counter() - t
nlp = spacy.load(sys.argv[1])
load_s = time.perf_counter() - t
peak_load = status("VmHWM")
from spacy_sapel.index import DenseIndex
from spacy_sapel.kb import KnowledgeBase
t = time.perf_counter()
KnowledgeBase.from_disk(sys.argv[1] + "/sapel_linker/kb")
DenseIndex.from_disk(sys.argv[1] + "/sapel_linker/index")
parts_s = time.perf_counter() - t
linker = nlp.get_pipe("sapel_linker")
t = time.perf_counter()
linker.linker_kb.search([f"disease {i}" for i in range(200)], top_k=5)
search_s = time.perf_counter() - t
import json
from importlib.metadata import PackageNotFoundError, version
# memory read before anything else is imported; the version from the metadata (none
# in a linker install without the trf extra)
try:
    transformers_version = version("transformers")
except PackageNotFoundError:
    transformers_version = "not installed"
print(json.dumps({
    "load_s": load_s, "import_spacy_s": import_s, "peak_load": peak_load,
    "peak_search": status("VmHWM"), "search_s": search_s, "parts_s": parts_s,
    "rss_end": status("VmRSS"), "transformers": transformers_version,
    "transformers_imported": "transformers" in sys.modules,
    "sklearn_imported": "sklearn" in sys.modules,
}))
"""


# --- data ---------------------------------------------------------------------------
def clustered_vectors(n: int, dim: int, *, seed: int = 0, per_cluster: int = 100,
                      noise: float = 1.0) -> np.ndarray:
    """``n`` unit vectors around ``n / per_cluster`` random centres (Gaussian noise of
    the centres' own scale: neighbours are mostly, not only, in the same cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // per_cluster), dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 200_000):
        m = min(200_000, n - start)
        chunk = centres[rng.integers(0, len(centres), m)]
        chunk += noise * rng.standard_normal((m, dim), dtype=np.float32)
        out[start : start + m] = chunk
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def synthetic_kb(n_names: int, *, names_per_concept: int = 4) -> KnowledgeBase:
    """A KB of ``n_names`` distinct synthetic names (``names_per_concept`` each)."""
    rng = np.random.default_rng(1)
    syllables = ["car", "dio", "neu", "ro", "path", "itis", "osis", "my", "o", "ma",
                 "hepa", "to", "gen", "ic", "renal", "fail", "ure", "pul", "mon", "ary"]
    words = ["".join(rng.choice(syllables, 3)) for _ in range(5000)]
    concepts = []
    for c in range(n_names // names_per_concept):
        names = [f"{words[(c * 7 + j * 13) % 5000]} {words[(c + j) % 5000]} {c}-{j}"
                 for j in range(names_per_concept)]
        concepts.append(Concept(f"SYN:{c:07d}", names[0], names[1:], types=["T047"]))
    return KnowledgeBase.from_concepts(concepts, source="synthetic", name="synthetic")


def ncbi_docs(path: Path) -> list:
    return list(read_pubtator(path))


def docs_with_gold_ents(nlp: Language, *paths: Path) -> List[Doc]:
    """spaCy docs whose entities are the PubTator files' gold mentions."""
    return [doc for path in paths for doc in pubtator_to_docs(nlp, path)]


def medic_vectors(data_dir: Path, encoder: SapEncoder, out_dir: Path) -> Tuple[KnowledgeBase, np.ndarray]:
    """The MEDIC KB and its alias embeddings (encoded once, cached as .npy)."""
    kb = read_kb([data_dir / "medic-2012" / "medic_06Jul2012.txt"], "medic", name="medic")
    cache = out_dir / f"medic_{kb.n_names}_{encoder.fingerprint[:16]}.npy"
    if cache.exists():
        return kb, np.load(cache)
    msg.info(f"Encoding {kb.n_names} MEDIC names once (cached as {cache})")
    t = time.perf_counter()
    vectors = encoder.encode(kb.alias_table()[0], show_progress=sys.stderr.isatty())
    msg.info(f"Encoded in {time.perf_counter() - t:.0f} s")
    np.save(cache, vectors)
    return kb, vectors


# --- ANN vs exact -----------------------------------------------------------------------
def index_bytes(index: DenseIndex, folder: Path) -> int:
    index.to_disk(folder)
    size = (folder / "index.faiss").stat().st_size
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    return size


def timed_search(index: DenseIndex, queries: np.ndarray, k: int) -> Tuple[np.ndarray, float]:
    index.search(queries[:10], k)  # choose the backend, warm up
    t = time.perf_counter()
    _, rows = index.search(queries, k)
    return rows, len(queries) / (time.perf_counter() - t)


def recall_at(rows: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(rows, exact)]))


def compare_indexes(
    title: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    configs: Dict[str, dict],
    work: Path,
    *,
    fingerprint: str,
    keep: Optional[str] = None,
) -> Tuple[List[tuple], Optional[DenseIndex]]:
    """Rows of (name, resolved type, recall@10, qps, speed-up, build s, bytes/vector)."""
    k = 10
    rows_out = []
    exact_index = DenseIndex(index_type="flat", device="cpu")
    t = time.perf_counter()
    exact_index.build(vectors, fingerprint=fingerprint)
    build = time.perf_counter() - t
    exact, exact_qps = timed_search(exact_index, queries, k)
    rows_out.append(("exact (flat)", "flat", 1.0, exact_qps, 1.0, build,
                     index_bytes(exact_index, work / "idx") / len(vectors)))
    del exact_index
    gc.collect()
    kept = None
    for name, options in configs.items():
        index = DenseIndex(device="cpu", **options)
        t = time.perf_counter()
        index.build(vectors, fingerprint=fingerprint)
        build = time.perf_counter() - t
        found, qps = timed_search(index, queries, k)
        rows_out.append((name, index.index_type, recall_at(found, exact), qps, qps / exact_qps,
                         build, index_bytes(index, work / "idx") / len(vectors)))
        msg.text(f"  {title} {name}: {rows_out[-1]}")
        if name == keep:
            kept = index
        else:
            del index
            gc.collect()
    return rows_out, kept


def print_ann(title: str, rows: List[tuple]) -> None:
    msg.table(
        [(n, t, f"{r:.3f}", f"{q:,.0f}", f"{s:.1f}x", f"{b:.1f}", f"{by:,.0f}")
         for n, t, r, q, s, b, by in rows],
        header=("index", "type", "recall@10", "queries/s", "vs exact", "build s", "bytes/vector"),
        divider=True,
        title=title,
    )


# --- pipelines ----------------------------------------------------------------------------
def linker_nlp(linker_kb: LinkerKB, **config) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config=config)
    nlp.get_pipe("sapel_linker").set_kb(lambda: linker_kb)
    return nlp


def load_probe(path: Path, python: str, repeats: int) -> Dict[str, Any]:
    """``import spacy`` + ``spacy.load`` seconds (and import spacy alone), peak RSS MB
    after load and after 200 searches, search s, KB + index from_disk s, RSS MB at the
    end, transformers version and whether scikit-learn got imported: the median of
    ``repeats`` fresh processes of the interpreter ``python`` (the first may read cold
    files)."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([python, "-c", LOAD_PROBE, str(path)], capture_output=True,
                             text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {key: (float(np.median([r[key] for r in runs])) if isinstance(value, float) else value)
            for key, value in runs[0].items()}


def naive_link(linker_kb: LinkerKB, docs: Sequence[Doc], top_k: int) -> List[List[set]]:
    """The baseline: per doc, its mentions encoded in input order (no dedup across or
    within docs, no cache, no length bucketing), then searched."""
    import torch

    encoder = linker_kb.encoder
    k = min(max(8 * top_k, 32), linker_kb.index.ntotal)
    out = []
    for doc in docs:
        texts = [" ".join(ent.text.split()) for ent in doc.ents]
        if not texts:
            out.append([])
            continue
        ids = encoder._tokenize(texts)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(ids), encoder.batch_size):
                parts.append(encoder._pool(encoder._collate(ids[start : start + encoder.batch_size])).cpu().numpy())
        scores, rows = linker_kb.index.search(np.concatenate(parts), k)
        best = linker_kb._best_per_concept(scores, rows)
        # every concept tied at the best score: MEDIC gives some names to two concepts
        out.append([_tied_best(linker_kb, b) for b in best])
    return out


def _tied_best(linker_kb: LinkerKB, best: Dict[int, float]) -> set:
    """The ids of the concepts at the best score (within float noise)."""
    if not best:
        return set()
    top = max(best.values())
    return {linker_kb.kb.concept_id_at(row) for row, score in best.items() if score >= top - 1e-6}


def ner_pipeline(ner_path: Optional[Path], config_path: Path, examples_docs: List[Doc]) -> Tuple[Language, str]:
    if ner_path is not None:
        return spacy.load(ner_path), f"trained NER from {ner_path}"
    from spacy.training import Example

    config = spacy.util.load_config(config_path, interpolate=True)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in examples_docs[:20]]
    nlp.initialize(lambda: examples)
    return nlp, f"untrained NER built from {config_path} (weights: packaged MiniLM; throughput only)"


@Language.component("bench_gold_ents")
def bench_gold_ents(doc: Doc) -> Doc:
    """Replace the (untrained) NER's entities with the gold mentions of this text."""
    spans = GOLD_ENTS.get(doc.text, [])
    doc.ents = [doc.char_span(s, e, label="Disease") for s, e in spans]
    return doc


GOLD_ENTS: Dict[str, List[Tuple[int, int]]] = {}


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with medic-2012/ and ncbi-disease/"),
    output_dir: Path = typer.Option(Path("benchmarks/output/scale"), help="Work folder (git-ignored)"),
    sections: str = typer.Option("ann,load,linker,ner,ray", help="Comma-separated sections"),
    n_vectors: int = typer.Option(1_000_000, help="Synthetic vectors / KB names"),
    n_queries: int = typer.Option(1000, help="Synthetic queries"),
    synthetic_types: str = typer.Option("auto,auto+sq8", help="ANN configs on synthetic data (also: auto+fp16, hnsw, hnsw+sq8, ivf4x+sq8, ...)"),
    load_index: str = typer.Option("auto+sq8", help="Index config (one of the ANN configs) of the 1M-name pipeline"),
    encoder_name: str = typer.Option(DEFAULT_ENCODER, "--encoder", help="Encoder directory or name"),
    ner: Optional[Path] = typer.Option(None, help="A trained NER pipeline (default: untrained from configs/ner_trf.cfg)"),
    ner_config: Path = typer.Option(Path("configs/ner_trf.cfg"), help="NER config for the untrained NER"),
    load_repeats: int = typer.Option(3, help="Fresh processes per spacy.load probe (median reported)"),
    probe_python: str = typer.Option("", help="Comma-separated Python interpreters to time spacy.load in (each with spacy_sapel installed, e.g. a lean linking install); default: this one"),
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(sections.split(","))
    encoder = SapEncoder.from_pretrained(encoder_name, device="cpu")
    fingerprint = encoder.fingerprint
    msg.info(f"{os.cpu_count()} CPUs, faiss {faiss.__version__} with {faiss.omp_get_max_threads()} threads, "
             f"encoder {encoder.name} (dim {encoder.dim})")
    ncbi_dev_path = data_dir / "ncbi-disease" / "NCBIdevelopset_corpus.txt"
    ncbi_dev = ncbi_docs(ncbi_dev_path)
    report: List[Tuple[str, str]] = []
    all_configs = {
        "auto": {"index_type": "auto"},
        "auto+fp16": {"index_type": "auto", "storage": "fp16"},
        "auto+sq8": {"index_type": "auto", "storage": "sq8"},
        "hnsw": {"index_type": "hnsw"},
        "ivf": {"index_type": "ivf", "nprobe": 32},
        "ivf+fp16": {"index_type": "ivf", "nprobe": 32, "storage": "fp16"},
        "hnsw+fp16": {"index_type": "hnsw", "storage": "fp16"},
        "hnsw+sq8": {"index_type": "hnsw", "storage": "sq8"},
        "ivf4x+sq8": {"index_type": "ivf", "nlist": 4 * int(np.sqrt(n_vectors)), "nprobe": 64, "storage": "sq8"},
        "flat+pca256+fp16": {"index_type": "flat", "pca_dim": 256, "storage": "fp16"},
        "flat+fp16": {"index_type": "flat", "storage": "fp16"},
    }
    big_index: Optional[DenseIndex] = None
    synthetic: Optional[np.ndarray] = None

    if "ann" in wanted or "load" in wanted:
        t = time.perf_counter()
        synthetic = clustered_vectors(n_vectors + n_queries, encoder.dim)
        msg.info(f"{n_vectors:,} synthetic vectors in {time.perf_counter() - t:.0f} s")
    if "ann" in wanted:
        assert synthetic is not None
        configs = {name: all_configs[name] for name in synthetic_types.split(",")}
        rows, big_index = compare_indexes(
            "synthetic", synthetic[n_queries:], synthetic[:n_queries], configs, output_dir,
            fingerprint=fingerprint, keep=load_index,
        )
        print_ann(f"ANN vs exact: {n_vectors:,} synthetic clustered unit vectors (dim {encoder.dim}), "
                  f"{n_queries} held-out queries", rows)
        kb, vectors = medic_vectors(data_dir, encoder, output_dir)
        mentions = sorted({" ".join(m.text.split()) for d in ncbi_dev for m in d.mentions})
        queries = encoder.encode(mentions)
        medic_configs = {name: all_configs[name] for name in
                         ("auto", "ivf", "ivf+fp16", "hnsw", "hnsw+fp16", "flat+pca256+fp16")
                         if "pca256" not in name or encoder.dim > 256}
        rows, _ = compare_indexes("medic", vectors, queries, medic_configs, output_dir,
                                  fingerprint=fingerprint)
        print_ann(f"ANN vs exact: MEDIC alias embeddings ({len(vectors):,} names), "
                  f"{len(queries)} NCBI-disease dev mention strings as queries", rows)

    if "load" in wanted:
        assert synthetic is not None
        t = time.perf_counter()
        kb = synthetic_kb(n_vectors)
        msg.info(f"Synthetic KB: {len(kb):,} concepts, {kb.n_names:,} names ({time.perf_counter() - t:.0f} s)")
        if big_index is None:
            big_index = DenseIndex(device="cpu", **all_configs[load_index])
            big_index.build(synthetic[n_queries:], fingerprint=fingerprint)
        del synthetic
        gc.collect()
        big = output_dir / "pipeline_1m"
        index_type = big_index.index_type
        linker_nlp(LinkerKB(encoder=encoder, kb=kb, index=big_index)).to_disk(big)
        small_kb = synthetic_kb(1000)
        small_index = DenseIndex(index_type="auto", device="cpu")
        small_index.build(clustered_vectors(small_kb.n_names, encoder.dim), fingerprint=fingerprint)
        small = output_dir / "pipeline_1k"
        linker_nlp(LinkerKB(encoder=encoder, kb=small_kb, index=small_index)).to_disk(small)
        del kb, big_index
        gc.collect()
        kb_bytes = sum(f.stat().st_size for f in (big / "sapel_linker" / "kb").iterdir())
        index_file = (big / "sapel_linker" / "index" / "index.faiss").stat().st_size
        for python in probe_python.split(",") if probe_python else [sys.executable]:
            b, s = load_probe(big, python, load_repeats), load_probe(small, python, load_repeats)
            env = (f"{python}: transformers {b['transformers']} "
                   f"({'imported' if b['transformers_imported'] else 'not imported'}), scikit-learn "
                   f"{'imported' if b['sklearn_imported'] else 'not imported'}")
            rows = [
                (label, f"{p['load_s']:.2f}", f"{p['import_spacy_s']:.2f}", f"{p['parts_s']:.3f}",
                 f"{p['peak_load']:,.0f}", f"{p['peak_search']:,.0f}", f"{p['rss_end']:,.0f}",
                 f"{p['search_s'] * 1000 / 200:.2f}")
                for label, p in ((f"{n_vectors:,}-name KB", b), ("1k-name KB", s))
            ]
            msg.table(
                rows,
                header=("pipeline", "import spacy + spacy.load s", "of which import spacy s",
                        "KB+index load s", "peak RSS MB (load)", "peak RSS MB (+200 searches)",
                        "RSS MB at end", "ms/mention"),
                divider=True,
                title=f"spacy.load of a linker pipeline, {n_vectors:,} synthetic names ({load_index} -> "
                      f"{index_type} index), median of {load_repeats} fresh processes; {env}",
            )
            per_name = (b["peak_load"] - s["peak_load"]) * 1024 / n_vectors
            per_name_after = (b["peak_search"] - s["peak_search"]) * 1024 / n_vectors
            per_name_end = (b["rss_end"] - s["rss_end"]) * 1024 / n_vectors
            msg.text(f"Beyond the encoder ({n_vectors:,}-name minus 1k-name pipeline): {per_name:.3f} KB/name after load, "
                     f"{per_name_after:.3f} KB/name after 200 searches (peak RSS), {per_name_end:.3f} KB/name "
                     f"current RSS at the end; on disk: KB {kb_bytes / n_vectors:.0f} "
                     f"B/name, index {index_file / n_vectors:.0f} B/name (memory-mapped, paged in on use)")
            report.append((f"load ({python})", f"{b['load_s']:.2f} s, {per_name:.3f} KB/name"))


    medic_linker_kb = None
    if wanted & {"linker", "ner", "ray"}:
        kb, vectors = medic_vectors(data_dir, encoder, output_dir)
        index = DenseIndex(index_type="auto", device="cpu")
        index.build(vectors, fingerprint=fingerprint)
        medic_linker_kb = LinkerKB(encoder=encoder, kb=kb, index=index)
        msg.info(f"MEDIC KB: {len(kb):,} concepts, {kb.n_names:,} names, {index.index_type} index")

    if "linker" in wanted:
        assert medic_linker_kb is not None
        # abbreviations off: the naive baseline links each mention string as it is
        nlp = linker_nlp(medic_linker_kb, abbreviations=False)
        docs = docs_with_gold_ents(nlp, ncbi_dev_path)
        n_mentions = sum(len(d.ents) for d in docs)
        naive_link(medic_linker_kb, docs[:3], 5)  # warm-up
        t = time.perf_counter()
        naive = naive_link(medic_linker_kb, docs, 5)
        naive_s = time.perf_counter() - t
        docs = docs_with_gold_ents(nlp, ncbi_dev_path)
        t = time.perf_counter()
        linked = list(nlp.get_pipe("sapel_linker").pipe(docs, batch_size=64))
        fast_s = time.perf_counter() - t
        same = np.mean([a in b for d, n in zip(linked, naive) for a, b in zip([e.kb_id_ for e in d.ents], n)])
        unique = len({e.text for d in docs for e in d.ents})
        msg.table(
            [("naive (per doc, input order, no dedup/cache)", f"{n_mentions / naive_s:,.0f}", "1.0x"),
             ("nlp.pipe: dedup + LRU cache + length bucketing", f"{n_mentions / fast_s:,.0f}",
              f"{naive_s / fast_s:.1f}x")],
            header=("linker", "mentions/s", "ratio"),
            divider=True,
            title=f"Linker throughput: NCBI-disease dev, {len(docs)} abstracts, {n_mentions} gold mentions "
                  f"({unique} distinct strings), MEDIC KB; top-1 among naive's best (ties included): {same:.1%}",
        )
        report.append(("linker", f"{naive_s / fast_s:.1f}x"))

    if "ner" in wanted:
        assert medic_linker_kb is not None
        texts = [d.text for d in ncbi_dev]
        gold_nlp = spacy.blank("en")
        gold_docs = docs_with_gold_ents(gold_nlp, ncbi_dev_path)
        GOLD_ENTS.update({d.text: [(e.start_char, e.end_char) for e in d.ents] for d in gold_docs})
        nlp, how = ner_pipeline(ner, ner_config, gold_docs)
        n_words = sum(len(gold_nlp.make_doc(t)) for t in texts)
        nlp.add_pipe("bench_gold_ents")
        nlp.add_pipe("sapel_linker")
        linker = nlp.get_pipe("sapel_linker")
        linker.set_kb(lambda: medic_linker_kb)
        list(nlp.pipe(texts[:8]))  # warm-up
        extra = ["bench_gold_ents", "sapel_linker"]
        ner_times, both_times = [], []
        for _ in range(2):  # interleaved, best of two: the machine is shared
            t = time.perf_counter()
            list(nlp.pipe(texts, batch_size=32, disable=extra))
            ner_times.append(time.perf_counter() - t)
            linker._cache.clear()  # a cold cache: each run links from scratch
            t = time.perf_counter()
            linked = list(nlp.pipe(texts, batch_size=32))
            both_times.append(time.perf_counter() - t)
        ner_s, both_s = min(ner_times), min(both_times)
        n_ents = sum(len(d.ents) for d in linked)
        msg.table(
            [("NER alone", f"{n_words / ner_s:,.0f}", "1.00x"),
             ("NER + gold-mention swap + sapel_linker", f"{n_words / both_s:,.0f}", f"{both_s / ner_s:.2f}x")],
            header=("pipeline", "words/s", "slowdown"),
            divider=True,
            title=f"NER + linker vs NER: {len(texts)} NCBI-disease dev abstracts, {n_words:,} words, "
                  f"{n_ents} linked mentions; {how}",
        )
        report.append(("ner", f"{both_s / ner_s:.2f}x slowdown"))

    if "ray" in wanted:
        assert medic_linker_kb is not None
        from spacy_sapel import _compat

        if not _compat.HAS_RAY:
            msg.warn("ray is not installed: skipping the ray section")
        else:
            report.append(("ray", ray_section(data_dir, output_dir, medic_linker_kb)))
    msg.info("Summary: " + "; ".join(f"{k}: {v}" for k, v in report))


def ray_section(data_dir: Path, output_dir: Path, linker_kb: LinkerKB) -> str:
    from spacy_sapel import _compat
    from spacy_sapel.pipeline.annotate import annotate
    from spacy_sapel.distributed import annotate_ray, read_jsonl_shards
    from spacy_sapel.pipeline.describe import describe_entities
    from spacy_sapel.training import read_jsonl_docs

    pipeline = output_dir / "pipeline_medic"
    linker_nlp(linker_kb).to_disk(pipeline)
    docs = docs_with_gold_ents(
        spacy.blank("en"),
        data_dir / "ncbi-disease" / "NCBItrainset_corpus.txt",
        data_dir / "ncbi-disease" / "NCBIdevelopset_corpus.txt",
    )
    corpus = output_dir / "ncbi_train_dev.jsonl"
    # the JSONL reader tokenizes with the pipeline's tokenizer, which does not split
    # inside a handful of mentions (e.g. "...type B)"): keep the mentions that align
    tokenizer = spacy.blank("en")
    records, n_misaligned = [], 0
    for d in docs:
        plain = tokenizer.make_doc(d.text)
        ents = [e for e in d.ents if plain.char_span(e.start_char, e.end_char) is not None]
        n_misaligned += len(d.ents) - len(ents)
        records.append({"text": d.text, "ents": [
            {"start": e.start_char, "end": e.end_char, "label": e.label_} for e in ents]})
    srsly.write_jsonl(corpus, records)
    msg.info(f"{n_misaligned} mention(s) not aligned with the tokenizer left out of the Ray corpus")
    n_mentions = sum(len(r["ents"]) for r in records)
    t = time.perf_counter()
    nlp = spacy.load(pipeline)
    single = [{"text": doc.text, "ents": describe_entities(nlp, doc)}
              for doc in annotate(nlp, read_jsonl_docs(nlp, corpus))]
    single_s = time.perf_counter() - t
    ray = _compat.import_ray()
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    init_s = time.perf_counter() - t
    t = time.perf_counter()
    annotate_ray(pipeline, corpus, output_dir / "ray_out", num_actors=2, docs_per_task=64)
    ray_s = time.perf_counter() - t
    ray.shutdown()
    got = read_jsonl_shards(output_dir / "ray_out")
    pairs = [(a, b) for g, o in zip(got, single) for a, b in zip(g["ents"], o["ents"])]
    same_docs = len(got) == len(single) and all(
        g["text"] == o["text"] and len(g["ents"]) == len(o["ents"]) for g, o in zip(got, single))
    id_diff = sum(a["kb_id"] != b["kb_id"] for a, b in pairs)
    cand_diff = [(a, b) for a, b in pairs
                 if [c["id"] for c in a["candidates"]] != [c["id"] for c in b["candidates"]]]
    # a differing candidate order is a tie (scores equal to float precision) or a real change
    real_diff = sum(
        any(abs(x["score"] - y["score"]) > 1e-5 for x, y in zip(a["candidates"], b["candidates"]))
        or {c["id"] for c in a["candidates"][:-1]} != {c["id"] for c in b["candidates"][:-1]}
        for a, b in cand_diff)
    max_diff = max((abs(a["score"] - b["score"]) for a, b in pairs if a["score"] is not None),
                   default=0.0)
    same = f"same docs and mentions: {same_docs}; kb_id differs for {id_diff}/{len(pairs)}, " \
           f"candidate order for {len(cand_diff)} ({real_diff} beyond float ties)"
    msg.table(
        [("one process (spacy.load + link)", f"{single_s:.1f}", f"{n_mentions / single_s:,.0f}", "1.00x"),
         ("annotate_ray, 2 actors (incl. actor start)", f"{ray_s:.1f}", f"{n_mentions / ray_s:,.0f}",
          f"{single_s / ray_s:.2f}x")],
        header=("run", "seconds", "mentions/s", "speed-up"),
        divider=True,
        title=f"Ray vs one process: {len(docs)} NCBI-disease train+dev abstracts, {n_mentions} mentions, "
              f"MEDIC linker (ray.init {init_s:.1f} s not counted); {same}, "
              f"max score difference {max_diff:.1e}",
    )
    return f"{single_s / ray_s:.2f}x ({same})"


if __name__ == "__main__":
    typer.run(main)
