"""``train-reranker``: fit a linker's reranker on a labelled corpus and save the
pipeline with it."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import spacy
import typer
from wasabi import msg

from ..pipeline.rerankers import FEATURES, LinearReranker
from ..training.corpus import read_gold_docs
from ..training.reranker_training import train_reranker
from ..util import atomic_directory, check_int_option, check_output_dir
from ._app import app
from ._util import PIPELINE_MARKER, check_distinct_paths, select_linker

#: the linker settings that shape the candidates the reranker learns from
_LINKER_KEYS = ("top_k", "batch_size", "abbreviations", "sparse_weight", "priors", "short_forms", "rank_k")


@app.command("train-reranker")
def train_reranker_cli(
    pipeline: Path = typer.Argument(..., help="Pipeline directory or installed package name with a sapel_linker"),
    corpora: List[Path] = typer.Argument(..., help="Training docs with gold entities and kb ids: .spacy, .jsonl or PubTator; one or more (the corpora whose mentions the KB holds as aliases and priors, e.g. build-kb's --train-mentions)", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write the pipeline with its trained reranker to"),
    linker: Optional[str] = typer.Option(None, "--linker", help="Name of the sapel_linker component (default: the only one)"),
    types: List[str] = typer.Option([], "--type", help="Entity labels to learn from (e.g. Disease); repeatable; default all"),
    folds: int = typer.Option(5, "--folds", help="Folds over documents: each fold's examples see the aliases and priors of the other folds only"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT even if it is not a pipeline directory (its whole content is deleted); a pipeline directory is always replaced"),
    feature: List[str] = typer.Option([], "--feature", help=f"Features to use (default all): {', '.join(FEATURES)}; repeatable"),
) -> None:
    """Link the gold mentions of one or more training corpora with the pipeline's own
    linker (k-fold over their documents together, see
    spacy_sapel.training.reranker_training), fit a linear reranker over each mention's
    candidates and write the pipeline with the reranker in the linker's config and its
    weights in the linker's directory."""
    # every option, and an output that may not be replaced (or is the pipeline read),
    # checked before the pipeline and its KB load
    check_int_option("folds", folds, minimum=2)
    model = LinearReranker(features=list(feature) or None)
    check_distinct_paths("CORPORA", corpora)
    check_output_dir(output, PIPELINE_MARKER, overwrite=overwrite, inputs=[pipeline, *corpora])
    nlp = spacy.load(pipeline)
    linker = select_linker(nlp, pipeline, linker)
    component = nlp.get_pipe(linker)
    linker_kb = component._require_kb()
    docs = [doc for corpus in corpora for doc in read_gold_docs(nlp, corpus)]
    if types:
        for doc in docs:
            doc.ents = [ent for ent in doc.ents if ent.label_ in types]
    config = {key: component.cfg[key] for key in _LINKER_KEYS}
    report = train_reranker(model, linker_kb, docs, linker_config=config, folds=folds, show_progress=True)
    msg.info(f"Reranker trained on {report['examples']} mentions: {report}")
    reranker_config = {"@misc": "sapel.linear_reranker.v1", "features": model.features}
    new = nlp.replace_pipe(linker, "sapel_linker", config={**component.cfg, "reranker": reranker_config})
    new.reranker.from_bytes(model.to_bytes())
    new.set_kb(lambda: linker_kb)
    with atomic_directory(output, PIPELINE_MARKER, overwrite=overwrite) as tmp:
        nlp.to_disk(tmp)
    msg.good(f"Wrote {output} ({linker!r} with a reranker over {len(model.features)} features)")
