"""Message codes: each defined once (a class body silently keeps the last of two
definitions, so a code added twice on two branches would hide one message)."""
import ast
from collections import Counter
from pathlib import Path

import spacy_sapel.errors as errors_module
from spacy_sapel.errors import Errors, Warnings


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
