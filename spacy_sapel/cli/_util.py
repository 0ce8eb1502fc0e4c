import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors, SapelError
from ..pipeline.linker import find_linkers
from ..training.corpus import read_gold_docs
from ..util import DirMarker, check_output_file

#: a directory nlp.to_disk wrote (and so may be replaced by a command that writes one)
PIPELINE_MARKER = DirMarker("spaCy pipeline directory", ("config.cfg",))


def parse_options(pairs: List[str]) -> Dict[str, Any]:
    """``["nprobe=32", "languages=[\\"ENG\\"]"]`` -> ``{"nprobe": 32, "languages": ["ENG"]}``."""
    options: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SapelError(Errors.E402.format(what="option", value=pair, options="key=value"))
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip().replace("-", "_")] = value
    return options


def check_choice(what: str, value: str, options: Iterable[str]) -> None:
    options = list(options)
    if value not in options:
        raise SapelError(Errors.E402.format(what=what, value=value, options=", ".join(options)))


def check_distinct_paths(option: str, paths: Iterable[Path]) -> None:
    """Refuse a corpus given twice: its mentions would count twice, as a KB's priors
    or as a reranker's examples."""
    seen: Dict[Path, Path] = {}
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            raise SapelError(Errors.E406.format(option=option, path=path, first=seen[key]))
        seen[key] = Path(path)


def linker_names(nlp: Language, pipeline: object) -> List[str]:
    """The names of the pipeline's sapel_linker components; E401 when it has none."""
    linkers = [name for name, _ in find_linkers(nlp)]
    if not linkers:
        raise SapelError(Errors.E401.format(path=pipeline, pipes=", ".join(nlp.pipe_names)))
    return linkers


def select_linker(nlp: Language, pipeline: object, name: Optional[str]) -> str:
    """The name of the pipeline's sapel_linker called ``name``, or of its only one
    when ``name`` is None; E401/E403 otherwise."""
    linkers = linker_names(nlp, pipeline)
    if name is None and len(linkers) == 1:
        return linkers[0]
    if name not in linkers:
        raise SapelError(Errors.E403.format(path=pipeline, name=name, linkers=", ".join(linkers)))
    return name


def calibration_inputs(
    pipeline: Path, corpus: Path, linker: Optional[str], output: Optional[Path]
) -> Tuple[Language, str, List[Doc]]:
    """What calibrate-nil and calibrate-veto start from, checked in this order before
    the work: the output (E42x), the pipeline and its linker (E401/E403), then the
    gold docs of the corpus."""
    if output is not None:
        check_output_file(output, inputs=[corpus])
    nlp = spacy.load(pipeline)
    name = select_linker(nlp, pipeline, linker)
    return nlp, name, read_gold_docs(nlp, corpus)
