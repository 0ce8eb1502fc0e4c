from __future__ import annotations

import numpy as np
import pytest

from spacy_sapel.errors import IndexLoadError, SapelError
from spacy_sapel.index.sparse import SparseIndex, char_ngrams

NAMES = [
    "Alzheimer Disease",
    "Parkinson Disease",
    "Breast Neoplasms",
    "breast cancer",
    "Hepatolenticular Degeneration",
    "Wilson disease",
    "G6PD deficiency",
]


@pytest.fixture(scope="module")
def index():
    index = SparseIndex(ngram_range=(2, 3))
    index.build(NAMES)
    return index


def test_char_ngrams_are_word_bounded_and_lowercased():
    grams = char_ngrams("Ab  CD", (2, 2))
    assert grams == [" a", "ab", "b ", " c", "cd", "d "]


def test_spelling_variants_find_their_name(index):
    scores, rows = index.search(["Alzheimers disease", "Parkinsons", "breast cancers"], 3)
    assert [NAMES[r] for r in rows[:, 0]] == ["Alzheimer Disease", "Parkinson Disease", "breast cancer"]
    assert np.all(scores[:, 0] <= 1.0 + 1e-6) and np.all(np.diff(scores, axis=1) <= 1e-7)


def test_identical_name_scores_one(index):
    scores, rows = index.search(["Wilson disease"], 1)
    assert rows[0, 0] == NAMES.index("Wilson disease")
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_no_shared_ngram_pads_with_minus_one(index):
    scores, rows = index.search(["zzqx", ""], 4)
    assert (rows == -1).all() and np.isneginf(scores).all()


def test_k_larger_than_matches_and_order_is_deterministic(index):
    a = index.search(["disease"], 50)
    b = index.search(["disease"], 50)
    assert (a[1] == b[1]).all()
    found = a[1][0][a[1][0] >= 0]
    assert len(found) == len(set(found.tolist())) <= len(NAMES)


def test_round_trips(index, tmp_path):
    queries = ["Wilson's disease", "G6PD", "neoplasm of breast"]
    expected = index.search(queries, 3)
    index.to_disk(tmp_path / "sparse")
    for loaded in (SparseIndex.from_disk(tmp_path / "sparse"), SparseIndex.from_bytes(index.to_bytes())):
        got = loaded.search(queries, 3)
        assert (got[1] == expected[1]).all()
        assert np.allclose(got[0], expected[0])
        assert loaded.meta == index.meta


def test_corrupt_files_are_refused(index, tmp_path):
    index.to_disk(tmp_path / "sparse")
    (tmp_path / "sparse" / "names.npz").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError, match="E128.*sparse index is unreadable"):
        SparseIndex.from_disk(tmp_path / "sparse")
    with pytest.raises(IndexLoadError, match="E128"):
        SparseIndex.from_bytes(b"\x00\x01")
    with pytest.raises(IndexLoadError, match="E128.*absent"):
        SparseIndex.from_disk(tmp_path / "absent")


@pytest.mark.parametrize("bad", [(0, 2), (3, 2), ("a", 3)])
def test_bad_ngram_range(bad):
    with pytest.raises(SapelError, match=r"E127.*ngram_range=.*1 <= min <= max"):
        SparseIndex(ngram_range=bad)


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_bad_k(index, k):
    with pytest.raises(SapelError, match="E702.*Option k must be an integer >= 1"):
        index.search(["flu"], k)
