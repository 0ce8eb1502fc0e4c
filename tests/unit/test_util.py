import json
import os
import random
import re
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from sapel_test_utils import dead_pid

from spacy_sapel.errors import InputFileError, KBReadError, OutputError, SapelError
from spacy_sapel.util import (
    DirMarker,
    atomic_directory,
    atomic_write_bytes,
    atomic_write_path,
    check_int_option,
    check_output_dir,
    json_dumps,
    malformed_line,
    read_json,
    remove_leftovers,
    write_json,
)

MARKER = DirMarker("test directory", ("meta.json",), ("format_version",))


def test_json_floats_round_trip_exactly(tmp_path):
    rng = random.Random(0)
    values = [0.3, 0.7, 3e-5, 1 / 3] + [rng.random() * 10 ** rng.randint(-8, 8) for _ in range(1000)]
    assert json.loads(json_dumps({"v": values}))["v"] == values
    write_json(tmp_path / "f.json", {"v": values, "name": "Sjögren"})
    assert read_json(tmp_path / "f.json") == {"v": values, "name": "Sjögren"}


def test_atomic_files_and_dirs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
        with atomic_directory(tmp_path / "d", MARKER) as d:
            (d / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_failed_write_leaves_old_content_and_no_temporaries(tmp_path):
    atomic_write_bytes(tmp_path / "f.bin", b"old")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "f.bin.dir", MARKER):
            raise RuntimeError("interrupted")
    assert (tmp_path / "f.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def write_marked(path, payload="old"):
    with atomic_directory(path, MARKER) as tmp:
        write_json(tmp / "meta.json", {"format_version": 1})
        (tmp / "payload").write_text(payload)


def test_atomic_directory_replaces_only_a_directory_it_wrote(tmp_path):
    write_marked(tmp_path / "out", "old")
    write_marked(tmp_path / "out", "new")
    assert (tmp_path / "out" / "payload").read_text() == "new"
    # a user's directory (no meta.json with the format marker) is refused, untouched
    user = tmp_path / "data"
    user.mkdir()
    (user / "vocab.tsv").write_text("1\tflu\n")
    (user / "meta.json").write_text('{"something": "else"}')
    with pytest.raises(OutputError, match=r"E423.*data.*meta.json, vocab.tsv.*--overwrite"):
        write_marked(user)
    assert sorted(p.name for p in user.iterdir()) == ["meta.json", "vocab.tsv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]
    # ... unless overwriting is asked for; an empty directory is always fine
    with atomic_directory(user, MARKER, overwrite=True) as tmp:
        (tmp / "payload").write_text("forced")
    assert [p.name for p in user.iterdir()] == ["payload"]
    (tmp_path / "empty").mkdir()
    write_marked(tmp_path / "empty")
    assert (tmp_path / "empty" / "payload").exists()


def test_atomic_directory_refuses_an_existing_file(tmp_path):
    (tmp_path / "out").write_text("my notes")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=r"E422.*out is an existing file"):
            with atomic_directory(tmp_path / "out", MARKER, overwrite=overwrite):
                raise AssertionError("the body must not run")
    assert (tmp_path / "out").read_text() == "my notes"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_output_that_is_or_contains_an_input_is_always_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "vocab.tsv").write_text("1\tflu\n")
    for out in (data, tmp_path):
        with pytest.raises(OutputError, match="E421.*vocab.tsv"):
            check_output_dir(out, MARKER, overwrite=True, inputs=[data / "vocab.tsv"])
    check_output_dir(data / "kb", MARKER, inputs=[data / "vocab.tsv"])


def test_current_directory_and_its_parents_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        with pytest.raises(OutputError, match="E420.*current directory"):
            with atomic_directory(out, MARKER, overwrite=True):
                raise AssertionError("the body must not run")
    assert list(work.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["work"]


def test_successful_write_removes_leftovers_of_killed_writes_only(tmp_path):
    dead = dead_pid()
    leftovers = [f".kb.{dead}-abcd_123.tmp", f".kb.old-{dead}"]
    kept = [
        f".kb.{os.getpid()}-abcd_123.tmp",  # a live process (this one) may be writing it
        f".kb.{os.getppid()}-abcd_123.tmp",
        f".kb2.{dead}-abcd_123.tmp",  # another output's
        f".kb.{dead}-abcd_123.tmp.bak",  # not exactly the pattern
        f".kb.old-{dead}x",
        "kb.old-1",
    ]
    legacy_old, legacy_recent = ".kb.x7_k2m9q.tmp", ".kb.a1b2c3d4.tmp"  # before the PID
    leftovers.append(legacy_old)
    kept.append(legacy_recent)
    for name in leftovers + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "big.bin").write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / legacy_old, (two_hours_ago, two_hours_ago))
    write_marked(tmp_path / "kb")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["kb"])
    assert remove_leftovers(tmp_path / "kb") == []


def test_disk_full_and_read_only_become_clear_errors(tmp_path):
    import errno

    class SafetensorError(Exception):
        pass

    failures = [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                         "StorageFull, message: \"No space left on device\" })"), "the disk is full"),
        (RuntimeError("Error: 'ret == (size)' failed: write error in index.faiss: 0 != 1 "
                      "(No space left on device)"), "the disk is full"),
    ]
    write_marked(tmp_path / "out", "old")
    for error, problem in failures:
        with pytest.raises(OutputError, match=rf"E426.*out.*{problem}"):
            with atomic_directory(tmp_path / "out", MARKER):
                raise error
        with pytest.raises(OutputError, match=rf"E426.*f.bin.*{problem}"):
            with atomic_write_path(tmp_path / "f.bin"):
                raise error
    assert (tmp_path / "out" / "payload").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # other errors pass through unchanged
    with pytest.raises(KeyError):
        with atomic_directory(tmp_path / "out", MARKER):
            raise KeyError("x")


def test_unwritable_location_and_full_disk_are_refused_before_work(tmp_path, monkeypatch):
    import shutil as shutil_module

    with pytest.raises(OutputError, match=r"E425.*out.*needed"):
        check_output_dir(tmp_path / "out", MARKER, needed_bytes=1 << 62)
    usage = shutil_module.disk_usage(tmp_path)
    check_output_dir(tmp_path / "out", MARKER, needed_bytes=max(1, usage.free // 4))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match="E424.*not writable"):
        check_output_dir(tmp_path / "new" / "out", MARKER)
    with pytest.raises(OutputError, match="E424.*not writable"):
        with atomic_write_path(tmp_path / "f.json"):
            raise AssertionError("the body must not run")


def test_atomic_write_path_refuses_a_directory_before_the_work(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="E427.*out is an existing directory"):
        with atomic_write_path(tmp_path / "out"):
            raise AssertionError("the body must not run")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "value,minimum", [(0, 1), (-1, 0), (2.0, 1), (True, 1), (False, 0), ("3", 1), (None, 1), (1, 2)]
)
def test_check_int_option_refuses_naming_the_option(value, minimum):
    expected = rf"\[E702\] Option n must be an integer >= {minimum}, got {re.escape(repr(value))}"
    with pytest.raises(SapelError, match=expected):
        check_int_option("n", value, minimum=minimum)


def test_check_int_option_returns_an_int():
    assert check_int_option("n", 3) == 3 and check_int_option("n", 0, minimum=0) == 0
    value = check_int_option("n", np.int64(5))
    assert value == 5 and type(value) is int


def test_malformed_line_names_file_line_and_cuts_a_long_line():
    err = malformed_line(Path("a.tsv"), 7, "2 fields", "3 fields", "x" * 1000)
    assert type(err) is InputFileError
    assert str(err).startswith("[E002] a.tsv, line 7: 2 fields. Expected 3 fields. The line reads: 'xxx")
    assert str(err).endswith("x...'") and str(err).count("x") < 400
    assert isinstance(malformed_line("kb.tsv", 1, "p", "e", "t", error=KBReadError), KBReadError)
