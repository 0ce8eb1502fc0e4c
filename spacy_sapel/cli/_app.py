import logging
import sys

import typer
from wasabi import msg

from ..errors import SapelError

app = typer.Typer(
    name="spacy_sapel",
    help="Entity linking for spaCy with SAP-trained encoders and faiss indexes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Run the CLI; a :class:`SapelError` (its message starts with a code such as
    ``[E001]`` and names the input at fault) ends the command with that message and
    exit code 1 instead of a traceback. Any other exception is a bug and keeps its
    traceback."""
    show_library_log()
    try:
        app()
    except SapelError as err:
        msg.fail(str(err))
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
