"""Progress bars appear on a terminal only, and only for loops longer than a second;
index training is announced on the ``spacy_sapel`` logger before it starts."""
from __future__ import annotations

import io
import logging
import sys
import time

import numpy as np

from spacy_sapel.index import DenseIndex
from spacy_sapel.kb.readers import read_kb
from spacy_sapel.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def slow(items, seconds):
    for item in items:
        time.sleep(seconds)
        yield item


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    bar = progress(slow(range(3), 0.4), desc="Linking", unit="doc")
    assert bar.disable
    assert list(bar) == [0, 1, 2]
    assert stderr.getvalue() == ""


def test_bar_on_a_terminal_for_a_long_loop_only(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress(range(1000), desc="Quick", unit="doc")) == list(range(1000))
    assert terminal.getvalue() == ""
    assert list(progress(slow(range(3), 0.4), desc="Linking", unit="doc")) == [0, 1, 2]
    assert "Linking" in terminal.getvalue()


def test_reader_gives_the_same_concepts_with_a_bar(monkeypatch, tmp_path):
    path = tmp_path / "names.tsv"
    path.write_text("".join(f"C{i}\tname {i}\n" for i in range(50)), encoding="utf8")
    plain = read_kb(path, "nemo_index")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    shown = read_kb(path, "nemo_index")
    assert [c.concept_id for c in shown] == [c.concept_id for c in plain] == [f"C{i}" for i in range(50)]


def test_index_training_is_logged(caplog):
    vectors = np.random.default_rng(0).standard_normal((400, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with caplog.at_level(logging.INFO, logger="spacy_sapel"):
        DenseIndex(index_type="ivf", nlist=4, device="cpu").build(vectors, fingerprint="f")
    assert any("Training the index on 400 vectors (4 inverted lists)" in r.getMessage()
               for r in caplog.records)


def test_command_line_shows_the_library_log(monkeypatch, capsys):
    """Library code logs instead of printing; ``python -m spacy_sapel`` shows the
    ``spacy_sapel`` logger's INFO messages on stderr."""
    from spacy_sapel.cli import _app

    logger = logging.getLogger("spacy_sapel")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setattr(_app, "app", lambda: logger.info("Training the index on 3 vectors"))
    _app.main()
    assert "Training the index on 3 vectors" in capsys.readouterr().err
