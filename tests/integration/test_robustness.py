"""Bad outputs and faults on the command line (issue 11): the user's files are never
deleted, mistakes are refused before the expensive encoding, and disk problems give
an [E...] message instead of a library's traceback."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from sapel_test_utils import dead_pid
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.errors import OutputError
from spacy_sapel.pipeline import LinkerKB

runner = CliRunner()
VOCAB = "1\theadache\n1\thead pain\n2\tinfluenza\n2\tflu\n3\tasthma\n"


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "vocab.tsv"
    path.write_text(VOCAB, encoding="utf8")
    return path


@pytest.fixture
def no_encoding(monkeypatch):
    """Fail the test if any name gets encoded."""

    def fail(*args, **kwargs):
        raise AssertionError("names were encoded before the mistake was reported")

    monkeypatch.setattr(SapEncoder, "encode", fail)


def build_kb(vocab, output, encoder, *options):
    return runner.invoke(
        app,
        ["build-kb", str(vocab), "-o", str(output), "--encoder", str(encoder), "--pooling", "cls",
         *map(str, options)],
    )


def error_of(result) -> str:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, ValueError), result.exception
    return str(result.exception)


# 1. `build-kb -o DIR` replaced whatever DIR held, including the input vocabulary
def test_build_kb_never_deletes_a_directory_it_did_not_write(tmp_path, vocab, tiny_bert_dir, no_encoding):
    data = tmp_path / "data"
    data.mkdir()
    (data / "vocab.tsv").write_text(VOCAB, encoding="utf8")
    (data / "README.txt").write_text("notes", encoding="utf8")
    # the output contains the input: refused even with --overwrite
    for extra in ((), ("--overwrite",)):
        message = error_of(build_kb(data / "vocab.tsv", data, tiny_bert_dir, *extra))
        assert "E421" in message and str(data / "vocab.tsv") in message
    # a directory of the user's (not a KB directory): refused, naming it
    message = error_of(build_kb(vocab, data, tiny_bert_dir))
    assert "E423" in message and str(data) in message and "--overwrite" in message
    assert sorted(p.name for p in data.iterdir()) == ["README.txt", "vocab.tsv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "vocab.tsv"]


def test_build_kb_replaces_its_own_kb_directory_and_others_with_overwrite(tmp_path, vocab, tiny_bert_dir):
    out = tmp_path / "kb"
    assert build_kb(vocab, out, tiny_bert_dir).exit_code == 0
    vocab.write_text(VOCAB + "4\tcough\n", encoding="utf8")
    result = build_kb(vocab, out, tiny_bert_dir)
    assert result.exit_code == 0, result.output
    assert len(LinkerKB.from_disk(out).kb) == 4
    other = tmp_path / "other"
    other.mkdir()
    (other / "old.txt").write_text("x")
    result = build_kb(vocab, other, tiny_bert_dir, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (other / "old.txt").exists() and len(LinkerKB.from_disk(other).kb) == 4


# 2. `-o` naming an existing file moved it to a hidden `.NAME.old-PID`
def test_build_kb_refuses_an_existing_file_as_output(tmp_path, vocab, tiny_bert_dir, no_encoding):
    out = tmp_path / "notes.txt"
    out.write_text("my notes", encoding="utf8")
    for extra in ((), ("--overwrite",)):
        message = error_of(build_kb(vocab, out, tiny_bert_dir, *extra))
        assert "E422" in message and str(out) in message
    assert out.read_text(encoding="utf8") == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "vocab.tsv"]


# 3. temporary and old folders of killed builds were never cleaned
def test_a_successful_build_removes_leftovers_of_killed_builds(tmp_path, vocab, tiny_bert_dir):
    dead = dead_pid()
    leftovers = [f".kb.{dead}-a1b2c3d4.tmp", f".kb.old-{dead}"]
    kept = [f".kb.{os.getpid()}-a1b2c3d4.tmp", f".kbx.{dead}-a1b2c3d4.tmp", ".kb.notes"]
    for name in leftovers + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.faiss").write_bytes(b"\0" * 64)
    result = build_kb(vocab, tmp_path / "kb", tiny_bert_dir)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["kb", "vocab.tsv"])


# 12. a typo in --index-option gave a TypeError after encoding the whole vocabulary
def test_index_option_typo_is_refused_before_encoding(tmp_path, vocab, tiny_bert_dir, no_encoding):
    message = error_of(build_kb(vocab, tmp_path / "kb", tiny_bert_dir, "--index-option", "nprob=4"))
    assert "E121" in message and "'nprob'" in message and "did you mean 'nprobe'" in message
    assert not (tmp_path / "kb").exists()


# 14. `link -o` naming an existing directory failed with IsADirectoryError after the work
def test_link_refuses_a_directory_as_output_before_loading(tmp_path, monkeypatch):
    import spacy

    def fail(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before the output was checked")

    monkeypatch.setattr(spacy, "load", fail)
    docs = tmp_path / "docs.txt"
    docs.write_text("Flu and asthma.\n", encoding="utf8")
    (tmp_path / "out").mkdir()
    result = runner.invoke(app, ["link", str(tmp_path / "pipeline"), str(docs), "-o", str(tmp_path / "out")])
    message = error_of(result)
    assert "E427" in message and str(tmp_path / "out") in message
    result = runner.invoke(app, ["link", str(tmp_path / "pipeline"), str(docs), "-o", str(docs)])
    assert "E421" in error_of(result)
    assert docs.read_text(encoding="utf8") == "Flu and asthma.\n"


# 15. `build-kb -o .` failed with "Device or resource busy" and left a temporary folder
def test_build_kb_into_the_current_directory_is_refused(tmp_path, vocab, tiny_bert_dir):
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "spacy_sapel", "build-kb", str(vocab), "-o", ".",
         "--encoder", str(tiny_bert_dir)],
        capture_output=True, text=True, cwd=work,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "E420" in out and "Traceback" not in out
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["vocab.tsv", "work"]


# 16. impossible options, an unwritable output and a full disk were found after encoding
@pytest.mark.parametrize(
    "options,code",
    [
        (["--index-type", "ivf", "--index-option", "nlist=1000"], "E109"),
        (["--index-type", "factory", "--index-option", "factory=IVF8,PQ7"], "E122"),
        (["--index-option", "pca_dim=64"], "E106"),
    ],
)
def test_impossible_index_options_are_refused_before_encoding(tmp_path, vocab, tiny_bert_dir, no_encoding, options, code):
    assert code in error_of(build_kb(vocab, tmp_path / "kb", tiny_bert_dir, *options))


def test_unwritable_output_and_full_disk_are_refused_before_encoding(tmp_path, vocab, tiny_bert_dir, no_encoding, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    message = error_of(build_kb(vocab, tmp_path / "kb", tiny_bert_dir))
    assert "E425" in message and "free" in message
    monkeypatch.undo()
    monkeypatch.setattr(SapEncoder, "encode", lambda *a, **k: pytest.fail("encoded"))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: not mode & os.W_OK and real_access(path, mode))
    message = error_of(build_kb(vocab, tmp_path / "ro" / "kb", tiny_bert_dir))
    assert "E424" in message and "not writable" in message


# 17. a full disk surfaced as a raw SafetensorError, a read-only output as a raw OSError
def test_disk_full_and_read_only_while_writing_are_clear_errors(tmp_path, vocab, tiny_bert_dir, monkeypatch):
    import faiss
    import safetensors.torch
    from safetensors import SafetensorError

    out = tmp_path / "kb"
    assert build_kb(vocab, out, tiny_bert_dir).exit_code == 0
    before = sorted(p.name for p in out.rglob("*"))

    def disk_full(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
            '"No space left on device" })'
        )

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", args[-1])

    for target, fake, problem in (
        (safetensors.torch, disk_full, "the disk is full"),
        (faiss, read_only, "read-only"),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(target, "save_file" if target is safetensors.torch else "write_index", fake)
            message = error_of(build_kb(vocab, out, tiny_bert_dir))
        assert "E426" in message and problem in message and str(out) in message
        assert sorted(p.name for p in out.rglob("*")) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["kb", "vocab.tsv"]


def test_library_writers_refuse_foreign_directories(tmp_path, vocab, tiny_bert_dir):
    """The same rule below the CLI: LinkerKB.to_disk and the encoder's to_disk."""
    from spacy_sapel.kb.readers import read_kb

    encoder = SapEncoder.from_pretrained(str(tiny_bert_dir), pooling="cls")
    linker_kb = LinkerKB.build(read_kb([vocab], "nemo_index"), encoder)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    with pytest.raises(OutputError, match="E423"):
        linker_kb.to_disk(mine)
    with pytest.raises(OutputError, match="E423"):
        encoder.to_disk(mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    linker_kb.to_disk(mine, overwrite=True)
    assert len(LinkerKB.from_disk(mine).kb) == 3




def test_annotate_ray_checks_its_output_before_starting_ray(tmp_path, monkeypatch):
    from spacy_sapel import distributed

    monkeypatch.setattr(distributed, "start_ray", lambda *a, **k: pytest.fail("Ray started before the output check"))
    corpus = tmp_path / "docs.txt"
    corpus.write_text("Flu.\n", encoding="utf8")
    (tmp_path / "pipeline").mkdir()
    with pytest.raises(OutputError, match="E421"):
        distributed.annotate_ray(tmp_path / "pipeline", corpus, tmp_path, overwrite=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="E423.*annotate-ray output directory"):
        distributed.annotate_ray(tmp_path / "pipeline", corpus, mine)
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]
