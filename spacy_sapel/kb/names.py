"""How names are compared: whitespace collapsed, case folded."""


def clean_name(name: str) -> str:
    """``name`` with runs of whitespace collapsed to one space and the ends trimmed."""
    return " ".join(name.split())


def name_key(name: str) -> str:
    """The key under which two spellings of a name count as the same name."""
    return clean_name(name).casefold()
