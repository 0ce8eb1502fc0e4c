"""Message codes: each defined once (a class body silently keeps the last of two
definitions, so a code added twice on two branches would hide one message) and used;
error classes: all SapelError, raised for every coded message, and the command line
prints their message without a traceback."""
import ast
import builtins
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import spacy_sapel.errors as errors_module
from spacy_sapel.errors import (
    EncoderInputError,
    Errors,
    InputNotFoundError,
    MissingDependencyError,
    RowOutOfRangeError,
    SapelError,
    UnknownConceptError,
    Warnings,
)


def _codes_by_class() -> dict:
    tree = ast.parse(Path(errors_module.__file__).read_text(encoding="utf8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = [
                target.id
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                for target in stmt.targets
                if isinstance(target, ast.Name)
            ]
    return found


def test_every_code_is_defined_once():
    by_class = _codes_by_class()
    assert set(by_class) >= {"Errors", "Warnings"}
    for name, codes in by_class.items():
        duplicates = [code for code, n in Counter(codes).items() if n > 1]
        assert not duplicates, f"{name} defines {duplicates} more than once"


def test_codes_follow_their_prefix_and_messages_carry_them():
    by_class = _codes_by_class()
    for code in by_class["Errors"]:
        assert code[0] == "E" and code[1:].isdigit()
        assert getattr(Errors, code).startswith(f"[{code}] ")
    for code in by_class["Warnings"]:
        assert code[0] == "W" and code[1:].isdigit()
        assert getattr(Warnings, code).startswith(f"[{code}] ")


PACKAGE = Path(errors_module.__file__).parent
ERROR_CLASSES = [
    obj for obj in vars(errors_module).values()
    if isinstance(obj, type) and issubclass(obj, BaseException)
]
#: the classes that keep a builtin exception type for callers that catch it
BUILTIN_TYPES = {
    UnknownConceptError: KeyError,
    RowOutOfRangeError: IndexError,
    EncoderInputError: TypeError,
    InputNotFoundError: FileNotFoundError,
    MissingDependencyError: ImportError,
}


def _package_sources() -> Iterator[Tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != Path(errors_module.__file__):
            yield path, path.read_text(encoding="utf8")


def test_every_code_is_used_by_the_package():
    text = "\n".join(source for _, source in _package_sources())
    by_class = _codes_by_class()
    unused = [
        f"{name}.{code}"
        for name in ("Errors", "Warnings")
        for code in by_class[name]
        if not re.search(rf"\b{name}\.{code}\b", text)
    ]
    assert not unused, f"defined but never used: {unused}"


def test_every_error_class_is_a_sapel_error():
    assert set(BUILTIN_TYPES) < set(ERROR_CLASSES)
    for cls in ERROR_CLASSES:
        assert issubclass(cls, SapelError) and issubclass(cls, ValueError), cls


@pytest.mark.parametrize("cls,builtin", BUILTIN_TYPES.items())
def test_builtin_types_are_kept_and_messages_read_plain(cls, builtin):
    message = Errors.E008.format(concept_id="D999", name="kb", count=3)
    err = cls(message)
    assert isinstance(err, builtin) and isinstance(err, SapelError)
    assert str(err) == message  # a plain KeyError would show repr(message)


def test_coded_messages_are_raised_with_the_package_classes():
    """Every exception made with an ``Errors`` message is one of the classes of
    spacy_sapel.errors (so the CLI catches it), never a builtin one."""
    wrong = []
    for path, source in _package_sources():
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
                continue
            coded = any(
                isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                and sub.value.id == "Errors"
                for sub in ast.walk(node.args[0])
            )
            name = node.func.id
            builtin = getattr(builtins, name, None)
            if coded and (
                (isinstance(builtin, type) and issubclass(builtin, BaseException))
                or (hasattr(errors_module, name) and getattr(errors_module, name) not in ERROR_CLASSES)
            ):
                wrong.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
    assert not wrong, f"coded messages raised with builtin classes: {wrong}"


@pytest.fixture
def cli_main(monkeypatch):
    from spacy_sapel.cli import _app

    logger = logging.getLogger("spacy_sapel")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    return _app


def _raising(err: BaseException):
    def app() -> None:
        raise err

    return app


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_command_line_prints_the_message_of_every_error_class(cli_main, monkeypatch, capsys, cls):
    message = Errors.E001.format(path="vocab.tsv")
    monkeypatch.setattr(cli_main, "app", _raising(cls(message)))
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    out = " ".join(out.split())  # wasabi wraps long messages
    assert message in out and repr(message) not in out
    assert "Traceback" not in out + err


def test_command_line_prints_a_bad_input_line(cli_main, monkeypatch, capsys, tmp_path):
    """A real command on a malformed file: E002 with the file and line, exit code 1."""
    bad = tmp_path / "bad.iob"
    bad.write_text("Flu\tB-Disease\nfever\n", encoding="utf8")
    argv = ["spacy_sapel", "convert", str(bad), "-o", str(tmp_path / "out.spacy"), "--format", "iob"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli_main.main()
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    out = " ".join(out.split())  # wasabi wraps long messages
    assert f"[E002] {bad}, line 2: one column only" in out and "reads: 'fever'" in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    "err", [ValueError("[E001] looks coded"), KeyError("[E008]"), RuntimeError("a bug")],
    ids=lambda err: type(err).__name__,
)
def test_command_line_keeps_the_traceback_of_other_exceptions(cli_main, monkeypatch, err):
    monkeypatch.setattr(cli_main, "app", _raising(err))
    with pytest.raises(type(err)):
        cli_main.main()
