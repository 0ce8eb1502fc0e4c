"""The package's layers import one way (README, "Layout"): a module may import its own
layer and the layers below it, never one above, and never a package module inside a
function (a cycle dodged at run time). Lazy imports of optional or heavy third-party
dependencies are fine."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

import spacy_sapel

PACKAGE = Path(spacy_sapel.__file__).parent

#: lowest first; a module's layer is its top-level name under spacy_sapel
LAYERS = [
    {"about", "errors", "util", "_compat", "progress"},
    {"kb"},
    {"encoder"},
    {"index"},
    {"pipeline"},
    {"training"},
    {"sap"},
    {"distributed"},
    {"cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(source: str, module: str, *, is_package: bool) -> Iterator[Tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for each import of a
    ``spacy_sapel`` module in ``source``."""
    tree = ast.parse(source)

    def walk(node: ast.AST, in_function: bool) -> Iterator[Tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == "spacy_sapel":
                    if target.count(".") == 0 or target == module.rsplit(".", 1)[0]:
                        # "from . import x" / "from spacy_sapel import x": x is the module
                        for alias in child.names:
                            yield f"{target}.{alias.name}", child.lineno, in_function
                    else:
                        yield target, child.lineno, in_function
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "spacy_sapel":
                        yield alias.name, child.lineno, in_function
            yield from walk(
                child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            )

    yield from walk(tree, False)


def layer_of(module: str) -> "int | None":
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def violations(source: str, module: str, *, is_package: bool = False) -> List[str]:
    """What is wrong with the imports of ``module`` (whose text is ``source``)."""
    found = []
    own = layer_of(module)
    for target, line, in_function in package_imports(source, module, is_package=is_package):
        if in_function:
            found.append(f"{module}:{line} imports {target} inside a function")
        theirs = layer_of(target)
        if own is not None and theirs is not None and theirs > own:
            found.append(f"{module}:{line} imports the higher layer {target}")
    return found


def package_modules() -> List[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_module_has_a_layer():
    missing = {
        module_name(p, PACKAGE)
        for p in package_modules()
        if module_name(p, PACKAGE) != "spacy_sapel" and layer_of(module_name(p, PACKAGE)) is None
    }
    assert not missing, f"modules outside the layer table: {sorted(missing)}"


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path):
    module = module_name(path, PACKAGE)
    assert violations(path.read_text("utf8"), module, is_package=path.name == "__init__.py") == []


def test_the_check_sees_upward_and_function_level_imports():
    source = (
        "from ..pipeline.linker import SapelLinker\n"
        "from ..errors import Errors\n"
        "from . import knowledge_base\n"
        "def f():\n"
        "    from .ids import split_ids\n"
        "    import torch\n"
    )
    found = violations(source, "spacy_sapel.kb.augment")
    assert found == [
        "spacy_sapel.kb.augment:1 imports the higher layer spacy_sapel.pipeline.linker",
        "spacy_sapel.kb.augment:5 imports spacy_sapel.kb.ids inside a function",
    ]
    assert violations("from spacy_sapel import sap\n", "spacy_sapel.training.x") == [
        "spacy_sapel.training.x:1 imports the higher layer spacy_sapel.sap"
    ]
