import logging
import sys

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy_sapel",
    help="Entity linking for spaCy with SAP-trained encoders and faiss indexes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Run the CLI; errors with a message from spacy_sapel.errors (they start with a
    code such as ``[E001]`` and name the input at fault) end the command with that
    message instead of a traceback."""
    show_library_log()
    try:
        app()
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        text = str(err.args[0]) if err.args else ""
        if not text.startswith("[E"):
            raise
        msg.fail(text)
        sys.exit(1)


def show_library_log() -> None:
    """The library reports through the ``spacy_sapel`` logger (index training, SAP
    validation, ...); on the command line its INFO messages go to stderr, as spaCy's
    CLI shows its own logger's."""
    logger = logging.getLogger("spacy_sapel")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
