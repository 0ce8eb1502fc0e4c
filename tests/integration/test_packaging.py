"""The package as a user installs it: an sdist, a wheel built from that sdist, the
wheel installed (offline) into a fresh virtualenv, and ``python -m spacy_sapel demo``
run there from a folder outside the repository. An editable install would hide
files that the distributions leave out (the example data, for one)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from sapel_test_utils import child_venv

ROOT = Path(__file__).parents[2]
# what a build reads: the metadata and the package (copied, so that building writes
# nothing into the checkout)
BUILD_INPUTS = ["pyproject.toml", "setup.cfg", "README.md", "spacy_sapel"]
EXAMPLE_DATA = ["spacy_sapel/example/diseases.jsonl", "spacy_sapel/example/texts.jsonl"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PIP_NO_INDEX": "1"}
# pyproject.toml's build-system.requires: built without isolation (offline), so they
# must be installed here (the test extra brings them)
BUILD_REQUIRES = ["setuptools>=70.1"]


def missing_build_requirements() -> list:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    missing = []
    for line in BUILD_REQUIRES:
        req = Requirement(line)
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                missing.append(line)
        except PackageNotFoundError:
            missing.append(line)
    return missing


def build(hook: str, source: Path, out: Path) -> Path:
    """Run setuptools' PEP 517 hook (``build_sdist``/``build_wheel``) in ``source``, as
    ``python -m build --no-isolation`` does; the path of the file it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, str(out)], cwd=source,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{hook} failed:\n{result.stdout}{result.stderr}"
    return out / result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """(sdist, wheel built from the unpacked sdist)."""
    missing = missing_build_requirements()
    if missing:
        pytest.skip(f"build requirements not installed: {', '.join(missing)} (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("dist")
    source = tmp / "checkout"
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, source / name)
    sdist = build("build_sdist", source, tmp / "dist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = build("build_wheel", unpacked, tmp / "dist")
    return sdist, wheel


def test_sdist_and_wheel_hold_the_example_data(distributions):
    sdist, wheel = distributions
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    for name in EXAMPLE_DATA:
        assert name in in_sdist, f"{name} is not in {sdist.name}"
        assert name in in_wheel, f"{name} is not in {wheel.name}"
    assert "spacy_sapel/cli/demo.py" in in_wheel


def test_demo_runs_from_the_installed_wheel(distributions, tiny_bert_dir, tmp_path):
    """The wheel installs offline next to this interpreter's dependencies, and its
    demo finds the example data inside the installed package (from a folder where no
    ``spacy_sapel/example`` lies around)."""
    _, wheel = distributions
    env_dir = tmp_path / "venv"
    python = str(child_venv(env_dir))
    env = {**os.environ, **OFFLINE}
    # --ignore-installed: the spacy-sapel under test is visible through the parent
    # env, and the wheel must go into the new one all the same
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--ignore-installed",
         str(wheel)],
        check=True, env=env, capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = subprocess.run([python, "-c", "import spacy_sapel; print(spacy_sapel.__file__)"],
                             check=True, env=env, capture_output=True, text=True, cwd=elsewhere)
    assert Path(located.stdout.strip()).is_relative_to(env_dir)
    result = subprocess.run(
        [python, "-m", "spacy_sapel", "demo", "--encoder", str(tiny_bert_dir), "--output-dir", "out"],
        env=env, capture_output=True, text=True, cwd=elsewhere,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Example KB: 47 concepts" in result.stdout
    assert (elsewhere / "out" / "links.html").is_file()
    assert (elsewhere / "out" / "pipeline" / "sapel_linker").is_dir()
