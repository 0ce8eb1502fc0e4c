"""The transformer for the NER stage: spacy-transformers' ``TransformerModel`` whose
weights come from a *local* directory only (the packaged all-MiniLM-L6-v2 by
default), checked at initialization with a clear error instead of a download.
spacy-transformers is the optional extra ``spacy-sapel[trf]``: this module imports
without it (spaCy imports it when it resolves the entry point), the architecture
fails with E509."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from spacy.util import registry
from thinc.api import Model

from .. import _compat
from ..encoder.default import packaged_minilm_path
from ..errors import Errors, MissingDependencyError, SapelError


def resolve_model_dir(name_or_path: Optional[str]) -> str:
    """``None``/empty: the packaged MiniLM; otherwise an existing local model
    directory with ``config.json`` (E505 when it is not)."""
    if not name_or_path:
        return str(packaged_minilm_path())
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        raise SapelError(Errors.E505.format(path=path))
    return str(path)


@registry.architectures("sapel.LocalTransformerModel.v1")
def create_local_transformer_model(
    name_or_path: Optional[str],
    get_spans: Callable,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
) -> Model:
    """``sapel.LocalTransformerModel.v1``: as ``spacy-transformers.TransformerModel.v3``
    with ``name_or_path`` a local directory (null: the packaged MiniLM). The directory
    is read at ``initialize`` only; a saved pipeline carries the weights itself.
    Needs spacy-transformers (``spacy-sapel[trf]``): E509 without it."""
    if not _compat.HAS_SPACY_TRANSFORMERS:
        raise MissingDependencyError(Errors.E509.format(name="sapel.LocalTransformerModel.v1"))
    from spacy_transformers.layers import TransformerModel

    model = TransformerModel(
        name_or_path or "",
        get_spans=get_spans,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
    )
    base_init = model.init

    def init(model: Model, X=None, Y=None):
        if not model.attrs["has_transformer"]:
            model.attrs["name"] = resolve_model_dir(name_or_path)
        return base_init(model, X=X, Y=Y)

    model.init = init
    return model
