"""``python -m spacy_sapel``: thin typer commands over the library."""
from ._app import app, main
from . import build_kb, demo, distributed, link  # noqa: F401  (register the commands)
from . import evaluate_linking, pretrain_sap  # noqa: F401
from . import convert, evaluate_ner, visualize  # noqa: F401  (NER + project, issue 3)
from . import calibrate_nil, calibrate_veto  # noqa: F401
from . import train_reranker  # noqa: F401

__all__ = ["app", "main"]
