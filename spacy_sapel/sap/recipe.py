"""The SAP recipe as one registered function, ``sapel.pretrain_sap.v1``: where the
pairs come from (a KB read with any reader, a NeMo pairs TSV, a labelled corpus) plus
the training settings, so that the CLI, ``project.yml`` and Python share one path: the
``[sap]`` block of ``configs/sap.cfg`` names it (:mod:`.config`).
``objective="retrieval"`` trains on the corpus mentions against candidates retrieved
from the KB instead (:mod:`.retrieval`)."""
from __future__ import annotations

import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union, get_type_hints

from spacy.util import registry

from ..encoder.default import DEFAULT_ENCODER
from ..encoder.sap_encoder import SapEncoder
from ..errors import Errors, SapelError
from ..kb import KnowledgeBase
from ..kb.readers import get_reader, read_kb
from ..training.mentions import add_mention_aliases, labelled_mentions
from ..util import PathLike, check_int_option
from .loop import check_sap_output
from .pairs import (
    PairSet,
    kb_pairs,
    mention_pairs,
    merge_pair_sets,
    read_pairs_tsv,
    split_validation,
    warn_skipped,
)
from .pairs import synonym_queries as synonym_queries_of

from .retrieval import RetrievalConfig, RetrievalResult, RetrievalTrainer
from .trainer import SapConfig, SapResult, SapTrainer

logger = logging.getLogger("spacy_sapel")

SapRun = Callable[..., Union[SapResult, RetrievalResult]]
#: "sap": multi-similarity loss on synonym pairs; "retrieval": marginal likelihood of
#: the gold concept's names among candidates retrieved from the whole KB (BioSyn)
OBJECTIVES = ("sap", "retrieval")


def load_pairs(
    *,
    kb: Optional[KnowledgeBase] = None,
    pairs_path: Optional[PathLike] = None,
    corpus: Optional[PathLike] = None,
    corpus_types: Optional[Sequence[str]] = None,
    kb_synonyms: bool = False,
    corpus_aliases: bool = False,
    max_pairs_per_concept: int = 50,
    seed: int = 0,
) -> PairSet:
    """The training pairs of a recipe: KB synonym pairs (unless a corpus is given and
    ``kb_synonyms`` is off), NeMo TSV pairs, and (mention, name) pairs of a corpus.
    ``corpus_aliases`` first adds the corpus's unambiguous mentions to the KB."""
    sets: List[PairSet] = []
    if corpus is not None:
        if kb is None:
            raise SapelError(Errors.E608)
        if corpus_aliases:
            add_mention_aliases(kb, corpus, types=corpus_types)
        sets.append(
            mention_pairs(
                corpus, kb, types=corpus_types,
                max_pairs_per_concept=max_pairs_per_concept, seed=seed,
            )
        )
    if kb is not None and (corpus is None or kb_synonyms):
        sets.append(kb_pairs(kb, max_pairs_per_concept=max_pairs_per_concept, seed=seed))
    if pairs_path is not None:
        sets.append(read_pairs_tsv(pairs_path, seed=seed))
    if not sets:
        raise SapelError(Errors.E608)
    pair_set = sets[0] if len(sets) == 1 else merge_pair_sets(sets, seed=seed)
    warn_skipped(pair_set)
    return pair_set


#: what a training setting's annotation asks of its config value, and how to say it
_SETTING_TYPES = {
    float: ((int, float), "a number"),
    int: ((int,), "an integer"),
    bool: ((bool,), "true or false"),
    str: ((str,), "a string"),
}


def training_config(
    objective: str = "sap", settings: Optional[Dict[str, Any]] = None
) -> Union[SapConfig, RetrievalConfig]:
    """The training settings of ``objective``: ``settings`` over the defaults of
    :class:`SapConfig` (or :class:`RetrievalConfig` for ``"retrieval"``), each checked
    by name (E630) and type (E631), then by value (``check``)."""
    if objective not in OBJECTIVES:
        raise SapelError(Errors.E622.format(value=objective, options=", ".join(OBJECTIVES)))
    config_type = RetrievalConfig if objective == "retrieval" else SapConfig
    hints = get_type_hints(config_type)
    known = [f.name for f in fields(config_type)]
    values: Dict[str, Any] = {}
    for key, value in (settings or {}).items():
        if key not in known:
            raise SapelError(Errors.E630.format(key=key, objective=objective, options=", ".join(known)))
        types, expected = _SETTING_TYPES[hints[key]]
        if isinstance(value, bool) != (hints[key] is bool) or not isinstance(value, types):
            raise SapelError(Errors.E631.format(key=key, value=value, expected=expected))
        values[key] = float(value) if hints[key] is float else value
    config = config_type(**values)
    config.check()
    return config


def _check_input(key: str, path: Optional[PathLike], expected: str) -> None:
    if path is not None and not Path(path).is_file():
        raise SapelError(Errors.E637.format(key=key, path=path, what="file", expected=expected))


@registry.misc("sapel.pretrain_sap.v1")
def create_sap_pretrainer(
    base_encoder: str = DEFAULT_ENCODER,
    kb_paths: Union[str, List[str], None] = None,
    reader: str = "nemo_index",
    reader_options: Optional[Dict[str, Any]] = None,
    pairs_path: Optional[str] = None,
    corpus: Optional[str] = None,
    corpus_types: Union[str, List[str], None] = None,
    kb_synonyms: bool = False,
    corpus_aliases: bool = False,
    pooling: Optional[str] = None,
    max_length: Optional[int] = None,
    normalize: Optional[str] = None,
    max_pairs_per_concept: int = 50,
    validation_fraction: float = 0.0,
    training: Optional[Dict[str, Any]] = None,
    objective: str = "sap",
    synonym_queries: int = 0,
) -> SapRun:
    """Return ``run(output_dir, *, resume=False, show_progress=True, device="auto")``,
    which trains ``base_encoder`` (a model directory, a saved SapEncoder such as an
    earlier run's ``model-last`` to fine-tune, or the default MiniLM) and writes
    ``output_dir/model-last``. ``kb_paths`` is one vocabulary file or a list, and
    ``corpus_types`` one PubTator mention type or a list (None: all).
    ``training`` holds :class:`SapConfig` fields, or :class:`RetrievalConfig` fields
    with ``objective="retrieval"`` (which needs ``kb_paths`` and ``corpus`` and returns
    a :class:`RetrievalResult`); unset fields keep the dataclass's defaults. With the
    retrieval objective, ``synonym_queries`` vocabulary names (a seeded sample, drawn
    before any corpus alias is added) train as queries beside the corpus mentions,
    each against its concept's other names. Every
    setting and input path is checked here, before any data is read."""
    config = training_config(objective, training)
    check_int_option("synonym_queries", synonym_queries, minimum=0)
    if isinstance(kb_paths, (str, os.PathLike)):
        kb_paths = [kb_paths]
    kb_paths = [str(path) for path in kb_paths or []]
    if isinstance(corpus_types, str):
        corpus_types = [corpus_types]
    if objective == "retrieval":
        if not kb_paths or corpus is None:
            raise SapelError(Errors.E620)
        unused = (("pairs_path", pairs_path, None), ("kb_synonyms", kb_synonyms, False),
                  ("validation_fraction", validation_fraction, 0.0))
        for name, value, default in unused:
            if value != default:
                raise SapelError(Errors.E621.format(name=name, value=value, objective=objective, default=default))
    elif synonym_queries:
        raise SapelError(Errors.E621.format(name="synonym_queries", value=synonym_queries, objective=objective, default=0))
    elif (not kb_paths and pairs_path is None) or (corpus is not None and not kb_paths):
        raise SapelError(Errors.E608)
    for path in kb_paths:
        _check_input("kb_paths", path, f"a vocabulary file for the reader {reader!r}")
    _check_input("pairs_path", pairs_path, "a NeMo pairs TSV (ID<TAB>synonym1<TAB>synonym2)")
    _check_input("corpus", corpus, "a PubTator corpus with gold concept ids")
    get_reader(reader, **(reader_options or {}))  # an unknown reader or option fails now
    recipe = {
        "objective": objective,
        "base_encoder": str(base_encoder),
        "kb_paths": kb_paths,
        "reader": reader,
        "reader_options": dict(reader_options or {}),
        "pairs_path": pairs_path,
        "corpus": corpus,
        "corpus_types": corpus_types,
        "kb_synonyms": kb_synonyms,
        "corpus_aliases": corpus_aliases,
        "pooling": pooling,
        "max_length": max_length,
        "normalize": normalize,
        "max_pairs_per_concept": max_pairs_per_concept,
        "validation_fraction": validation_fraction,
        "synonym_queries": synonym_queries,
    }
    inputs = [*kb_paths, *(p for p in (pairs_path, corpus) if p is not None), base_encoder]

    def load_encoder(device: str) -> SapEncoder:
        return SapEncoder.from_pretrained(
            base_encoder, pooling=pooling, max_length=max_length, normalize=normalize, device=device
        )

    def run(
        output_dir: PathLike, *, resume: bool = False, show_progress: bool = True,
        device: str = "auto",
    ) -> Union[SapResult, RetrievalResult]:
        check_sap_output(output_dir, inputs=inputs)
        kb = None
        if kb_paths:
            kb = read_kb(kb_paths, reader, **(reader_options or {}))
        if objective == "retrieval":
            return _run_retrieval(kb, output_dir, resume=resume, show_progress=show_progress, device=device)
        pair_set = load_pairs(
            kb=kb,
            pairs_path=pairs_path,
            corpus=corpus,
            corpus_types=corpus_types,
            kb_synonyms=kb_synonyms,
            corpus_aliases=corpus_aliases,
            max_pairs_per_concept=max_pairs_per_concept,
            seed=config.seed,
        )
        train, val = split_validation(pair_set, fraction=validation_fraction, seed=config.seed)
        logger.info(
            f"{len(train)} training pairs of {len(train.labels)} concepts"
            + (f", {len(val)} validation pairs of {len(val.labels)} held-out concepts" if len(val) else "")
        )
        encoder = load_encoder(device)
        trainer = SapTrainer(
            encoder, train, output_dir, config=config, validation=val if len(val) else None,
            recipe=recipe,
        )
        return trainer.train(resume=resume, show_progress=show_progress)

    def _run_retrieval(
        kb: KnowledgeBase, output_dir: PathLike, *, resume: bool, show_progress: bool, device: str
    ) -> RetrievalResult:
        # sampled from the vocabulary's own names, before corpus aliases join them
        synonyms = synonym_queries_of(kb, synonym_queries, seed=config.seed)
        if corpus_aliases:
            add_mention_aliases(kb, corpus, types=corpus_types)
        mentions, skipped = labelled_mentions(corpus, kb, types=corpus_types)
        if skipped:
            logger.info(
                "Corpus mentions skipped: %s", ", ".join(f"{k}: {v}" for k, v in skipped.items())
            )
        encoder = load_encoder(device)
        source = str(corpus) + (f" and {len(synonyms)} vocabulary names" if synonyms else "")
        trainer = RetrievalTrainer(
            encoder, kb, [*mentions, *synonyms], output_dir, config=config, recipe=recipe, source=source
        )
        logger.info(
            "%d training queries (%d vocabulary names asked) against %d KB names (%d candidates each)",
            len(trainer.queries), len(synonyms), len(trainer.names), trainer.n_candidates,
        )
        return trainer.train(resume=resume, show_progress=show_progress)

    return run
