"""Issue 15's table: what fine-tuning the encoder on NCBI-disease training mentions
adds to the whole linker (priors, short forms, spelling variants, the reranker), on
NCBI-disease development (MEDIC 2012) and BC5CDR development Disease mentions (CTD
2017), each KB holding its training corpus's mentions as aliases and priors.

Encoders:

- ``base``: all-MiniLM-L6-v2 (or ``--encoder``);
- ``finetune``: ``configs/sap_finetune.cfg`` as the project's ``finetune-sap`` step runs
  it (pairs of a mention and up to 8 names of its concept, hard batches unless
  ``--finetune-batching random``, lr 5e-5), ``--finetune-epochs`` epochs from the base
  encoder;
- ``retrieval``: the same config with ``--sap.objective retrieval`` (BioSyn-style: each
  mention against the 20 names the current encoder retrieves from the whole KB,
  re-encoded every epoch), ``--retrieval-epochs`` epochs; the other training mentions
  are KB names too (the config's ``corpus_aliases``);
- ``retrieval_vocab`` (instead of ``retrieval``, with ``--no-retrieval-aliases``): the
  same, retrieving from the vocabulary's names only, as BioSyn does;
- ``..._synN`` (with ``--retrieval-synonyms N``): N vocabulary names (a seeded sample)
  train as queries beside the mentions (the config's ``synonym_queries``);
- ``..._ms`` (with ``--retrieval-loss multi_similarity``): the retrieved candidates
  trained with SapBERT's multi-similarity loss (gold names positive, the others
  negative) instead of BioSyn's marginal likelihood;
- ``..._sparseN`` (with ``--retrieval-sparse N``): N of the 20 candidates are the
  mention's nearest names by character n-gram TF-IDF, the dense retrieval fills the
  rest (BioSyn's mix).

``--only base,retrieval`` trains and scores a subset; ``--seed N`` trains with another
seed (encoders named ``..._seedN``). All train on the NCBI-disease
training set against MEDIC 2012, or with ``--train-set bc5cdr`` on BC5CDR's training set
(its Disease mentions; Chemical ids are not in the KB) against CTD 2017 (``..._bc5cdr``). A trained encoder already in ``OUTPUT/NAME/model-last``
is reused (its ``training.json`` says how it was trained; ``--retrain`` trains again). Rows come from ``quality.py``'s functions: the
default linker and + the reranker (trained k-fold on the training corpus of each set).
``OUTPUT/results.json`` is rewritten atomically after each encoder; it keeps the rows of
encoders that this run does not score.

    python benchmarks/encoder_linking.py --data-dir ../shared/data \\
        --output-dir benchmarks/output/encoder_linking --cache-dir CACHE

By hand, not CI; one heavy job at a time on a small machine (on 2 cores about 16
minutes for the retrieval run, 25 for three epochs of retrieval_vocab, 5 for the
fine-tuning and 4 per encoder for the rows).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import spacy
import typer
from wasabi import msg

from quality import DEFAULT_LINKER as LINKER
from quality import SETS, cached_kb, evaluate, gold_docs, trained_reranker
from spacy_sapel.encoder import DEFAULT_ENCODER
from spacy_sapel.errors import SapelError
from spacy_sapel.sap.config import load_sap_config, pretrain_sap, resolve_sap_config
from spacy_sapel.sap.loop import check_sap_output
from spacy_sapel.sap.retrieval import LOSSES
from spacy_sapel.util import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "sap_finetune.cfg"
# the corpora an encoder can train on: the training corpus of a quality.py set, against
# that set's vocabulary
TRAIN_SETS = {"ncbi": "NCBI dev", "bc5cdr": "BC5CDR dev Disease"}


def train(
    name: str, data_dir: Path, out: Path, encoder: str, retrain: bool, settings: Dict[str, Any], train_set: str
) -> Dict[str, Any]:
    """Train (or reuse) the encoder ``name`` under ``out / name`` with
    ``configs/sap_finetune.cfg`` and the overrides ``settings`` on the training mentions
    of ``train_set`` (see :data:`TRAIN_SETS`); returns what its ``training.json`` says
    plus the minutes measured here (None when reused)."""
    model = out / name / "model-last"
    if model.is_dir() and not retrain:
        msg.info(f"{name}: reusing {model}")
        return {"model": str(model), "minutes": None, **_summary(out / name)}
    t = time.perf_counter()
    pretrain_sap(CONFIG, out / name, overrides=config_overrides(data_dir, encoder, settings, train_set))
    minutes = (time.perf_counter() - t) / 60
    msg.good(f"{name}: trained in {minutes:.1f} minutes")
    return {"model": str(model), "minutes": round(minutes, 1), **_summary(out / name)}


def config_overrides(data_dir: Path, encoder: str, settings: Dict[str, Any], train_set: str = "ncbi") -> Dict[str, Any]:
    """The overrides of ``configs/sap_finetune.cfg`` that train from ``encoder`` on the
    training mentions of ``train_set`` against its vocabulary, with ``settings`` on top."""
    _, _, vocabulary, reader, corpus = SETS[TRAIN_SETS[train_set]]
    return {
        "paths.encoder": encoder,
        "paths.kb": str(data_dir / vocabulary),
        "paths.corpus": str(data_dir / corpus),
        "sap.reader": reader,
        **settings,
    }


def _summary(run_dir: Path) -> Dict[str, Any]:
    try:
        record = json.loads((run_dir / "training.json").read_text(encoding="utf8"))
    except (OSError, ValueError):
        return {}
    result = record.get("result", {})
    return {k: result.get(k) for k in ("steps", "seconds", "final_loss")}


def earlier_results(path: Path, replaced: set) -> Dict[str, Any]:
    """What ``path`` holds of encoders other than ``replaced`` (a run with ``--only``
    adds to the earlier runs' rows); nothing when it is missing or unreadable."""
    try:
        earlier = json.loads(path.read_text(encoding="utf8"))
        kept = {k: v for k, v in earlier["encoders"].items() if k not in replaced}
        return {"encoders": kept, "rows": [r for r in earlier["rows"] if r["encoder"] in kept]}
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        msg.warn(f"{path} is not this benchmark's results ({err!r}); it is rewritten")
    return {"encoders": {}, "rows": []}


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with the corpora and vocabularies"),
    output_dir: Path = typer.Option(Path("benchmarks/output/encoder_linking"), help="Where the trained encoders and results.json go"),
    cache_dir: Optional[Path] = typer.Option(None, help="quality.py's cache of built KBs and trained rerankers"),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Base encoder"),
    finetune_epochs: int = typer.Option(1, min=1, help="Epochs of today's fine-tuning (the project's ft_epochs)"),
    retrieval_epochs: int = typer.Option(2, min=1, help="Epochs of retrieval-aware fine-tuning"),
    finetune_batching: str = typer.Option("hard", help="Batch order of today's fine-tuning: hard (the project's ft_batching) or random"),
    retrieval_aliases: bool = typer.Option(True, help="Retrieval training: the other training mentions are KB names (the config's corpus_aliases); --no-retrieval-aliases retrieves from the vocabulary's names only, as BioSyn does, and names the encoder retrieval_vocab"),
    retrieval_synonyms: int = typer.Option(0, min=0, help="Retrieval training: this many vocabulary names (a seeded sample) train as queries beside the corpus mentions; the encoder's name gets _synN"),
    retrieval_loss: str = typer.Option("marginal", help=f"Retrieval training's loss: {', '.join(LOSSES)}; multi_similarity adds _ms to the encoder's name"),
    retrieval_sparse: int = typer.Option(0, min=0, help="Retrieval training: this many of the 20 candidates come from the sparse (character n-gram) index; the encoder's name gets _sparseN"),
    seed: int = typer.Option(42, help="Seed of the trainings (the configs' default, 42); another seed adds _seedN to the trained encoders' names"),
    train_set: str = typer.Option("ncbi", help=f"Training corpus of the trained encoders: {', '.join(TRAIN_SETS)}; other than ncbi adds _NAME to their names"),
    only: Optional[str] = typer.Option(None, help="Comma-separated encoders to train and score (base, finetune, retrieval); default all"),
    retrain: bool = typer.Option(False, help="Train again even where OUTPUT/NAME/model-last exists"),
    folds: int = typer.Option(5, min=2, help="Folds over training documents for the reranker's examples"),
) -> None:
    inputs = [data_dir / SETS[s][0] for s in SETS] + [data_dir / SETS[s][2] for s in SETS] + [data_dir / SETS[s][4] for s in SETS]
    missing = [str(p) for p in inputs if not p.is_file()]
    if missing:
        raise typer.BadParameter(f"not found: {missing}", param_hint="--data-dir")
    if finetune_batching not in ("hard", "random"):
        raise typer.BadParameter(f"must be hard or random, got {finetune_batching!r}", param_hint="--finetune-batching")
    wanted = ["base", "finetune", "retrieval"] if only is None else [x.strip() for x in only.split(",") if x.strip()]
    unknown = [x for x in wanted if x not in ("base", "finetune", "retrieval")]
    if unknown or not wanted:
        raise typer.BadParameter(f"must name base, finetune or retrieval, got {only!r}", param_hint="--only")
    retrieval_name = "retrieval" + ("" if retrieval_aliases else "_vocab")
    retrieval_name += "_ms" if retrieval_loss == "multi_similarity" else ""
    retrieval_name += f"_syn{retrieval_synonyms}" if retrieval_synonyms else ""
    retrieval_name += f"_sparse{retrieval_sparse}" if retrieval_sparse else ""
    if train_set not in TRAIN_SETS:
        raise typer.BadParameter(f"must be one of {', '.join(TRAIN_SETS)}, got {train_set!r}", param_hint="--train-set")
    suffix = f"_seed{seed}" if seed != 42 else ""
    suffix += f"_{train_set}" if train_set != "ncbi" else ""
    finetune_name, retrieval_name = "finetune" + suffix, retrieval_name + suffix
    common = {"sap.corpus_aliases": True, "sap.training.seed": seed}
    trainings: Dict[str, Dict[str, Any]] = {}
    if "finetune" in wanted:
        trainings[finetune_name] = {**common, "sap.training.epochs": finetune_epochs,
                                    "sap.training.batching": finetune_batching}
    if "retrieval" in wanted:
        settings = {**common, "sap.objective": "retrieval", "sap.training.epochs": retrieval_epochs,
                    "sap.corpus_aliases": retrieval_aliases}
        if retrieval_synonyms:
            settings["sap.synonym_queries"] = retrieval_synonyms
        if retrieval_sparse:
            settings["sap.training.sparse_candidates"] = retrieval_sparse
        if retrieval_loss != "marginal":
            settings["sap.training.loss"] = retrieval_loss
        trainings[retrieval_name] = settings
    # every training's config is resolved (settings and inputs checked) and a folder
    # that is not a SAP output is refused before anything trains
    for name, settings in trainings.items():
        try:
            resolve_sap_config(load_sap_config(CONFIG, config_overrides(data_dir, encoder, settings, train_set)), path=CONFIG)
        except SapelError as err:
            msg.fail(f"{name}: {err}", exits=1)
        check_sap_output(output_dir / name)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    encoders: Dict[str, Dict[str, Any]] = {}
    if "base" in wanted:
        encoders["base"] = {"model": encoder, "minutes": 0}
    for name, settings in trainings.items():
        encoders[name] = train(name, data_dir, output_dir, encoder, retrain, settings, train_set)
    rows: List[tuple] = []
    results = earlier_results(output_dir / "results.json", set(encoders))
    results["encoders"].update(encoders)
    for name, info in encoders.items():
        for set_name, (corpus, types, *_rest) in SETS.items():
            linker_kb = cached_kb(data_dir, set_name, info["model"], cache_dir)
            docs, gold = gold_docs(spacy.blank("en"), data_dir / corpus, types)
            reranker = trained_reranker(data_dir, set_name, linker_kb, LINKER, folds, cache_dir)
            for linker, model in (("default linker", None), ("+ reranker", reranker)):
                acc, _, errors = evaluate(linker_kb, docs, gold, LINKER, reranker=model)
                row = (name, set_name, linker, f"{acc[1]:.3f}", f"{acc[5]:.3f}", errors["not_in_top_k"])
                rows.append(row)
                results["rows"].append(dict(zip(("encoder", "set", "linker", "acc@1", "acc@5", "not in top 5"), row)))
                msg.text(" | ".join(map(str, row)))
        atomic_write_bytes(output_dir / "results.json", json.dumps(results, indent=2).encode("utf8"))
    msg.table(rows, header=("encoder", "set", "linker", "acc@1", "acc@5", "not in top 5"), divider=True)
    for name, info in encoders.items():
        if name != "base":
            seconds = info.get("seconds")
            took = f"{seconds / 60:.1f} minutes of training" if seconds else "training time unknown"
            reused = " (reused)" if info["minutes"] is None else ""
            msg.info(f"{name}{reused}: {info.get('steps')} steps, {took}, final loss {info.get('final_loss')}")


if __name__ == "__main__":
    typer.run(main)
