import os
import stat

import pytest

from spacy_sapel.util import atomic_directory, atomic_write_bytes


def test_atomic_files_and_dirs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
        with atomic_directory(tmp_path / "d") as d:
            (d / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_failed_write_leaves_old_content_and_no_temporaries(tmp_path):
    atomic_write_bytes(tmp_path / "f.bin", b"old")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "f.bin.dir"):
            raise RuntimeError("interrupted")
    assert (tmp_path / "f.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
