import json
import os
import random
import stat

import pytest

from spacy_sapel.util import atomic_directory, atomic_write_bytes, json_dumps, read_json, write_json


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
