"""``python -m spacy_sapel``: thin typer commands over the library."""
from ._app import app, main
from . import build_kb, demo, link  # noqa: F401  (register the commands)

__all__ = ["app", "main"]
