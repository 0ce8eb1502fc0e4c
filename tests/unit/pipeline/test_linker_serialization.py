"""What ``exclude`` means for the linker's parts, as for spaCy's own components: an
excluded part is not written, or not read (the linker keeps its own); a part that is
needed and missing is a coded error, never a KeyError. The device a KB was loaded
for survives a save."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import spacy
import srsly
from sapel_test_utils import doc_with_ents

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.errors import IndexLoadError, SapelError
from spacy_sapel.index import DenseIndex
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.linker_kb import part_devices

KB_PARTS = ["encoder", "kb", "index", "sparse"]
#: every part of a linker with a sparse index and a trained reranker: what its
#: directory holds for each
PARTS = {"cfg": "cfg", "meta": "meta.json", "reranker": "reranker", **{p: p for p in KB_PARTS}}
TEXT = ("She had a heart attack and the flu.", [("heart attack", "DISEASE"), ("flu", "DISEASE")])


def linked(nlp):
    doc = nlp(doc_with_ents(nlp, *TEXT))
    return [(ent.kb_id_, ent._.kb_candidates) for ent in doc.ents]


def make_nlp(kb_dir, *, device="auto", weights=1.0):
    """A linker on ``kb_dir`` loaded for ``device``, with a sparse index and a
    reranker whose weights are all ``weights``."""
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "sapel_linker",
        config={"top_k": 3, "sparse_weight": 0.2, "reranker": {"@misc": "sapel.linear_reranker.v1"}},
    )
    nlp.config["initialize"]["components"]["sapel_linker"] = {
        "kb_loader": {"@misc": "sapel.load_kb_dir.v1", "path": str(kb_dir), "device": device}
    }
    nlp.initialize()
    train(nlp.get_pipe("sapel_linker"), weights)
    return nlp


def train(linker, value):
    linker.reranker.weights = np.full(len(linker.reranker.features), value)
    linker.reranker.set_target(linker.linker_kb)


def blank_linker():
    nlp = spacy.blank("en")
    linker = nlp.add_pipe(
        "sapel_linker", config={"reranker": {"@misc": "sapel.linear_reranker.v1"}}
    )
    return nlp, linker


@pytest.fixture(scope="module")
def nlp(toy_kb_dir):
    return make_nlp(toy_kb_dir)


@pytest.fixture(scope="module")
def saved(nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "nlp"
    nlp.to_disk(path)
    return path


def test_a_saved_linker_holds_every_part(saved):
    assert sorted(p.name for p in (saved / "sapel_linker").iterdir()) == sorted(PARTS.values())


@pytest.mark.parametrize("part", sorted(PARTS))
def test_an_excluded_part_is_not_written(nlp, tmp_path, part):
    nlp.get_pipe("sapel_linker").to_disk(tmp_path / "linker", exclude=[part])
    written = {p.name for p in (tmp_path / "linker").iterdir()}
    assert written == set(PARTS.values()) - {PARTS[part]}
    msg = srsly.msgpack_loads(nlp.get_pipe("sapel_linker").to_bytes(exclude=[part]))
    assert set(msg) == set(PARTS) - {part}


@pytest.mark.parametrize("part", KB_PARTS)
@pytest.mark.parametrize("how", ["disk", "bytes"])
def test_an_excluded_kb_part_is_not_read_but_kept(nlp, saved, part, how):
    """The excluded part stays the linker's own object; the others are loaded."""
    loaded = spacy.load(saved)
    linker = loaded.get_pipe("sapel_linker")
    before = linker.linker_kb
    if how == "disk":
        linker.from_disk(saved / "sapel_linker", exclude=[part])
    else:
        linker.from_bytes(nlp.get_pipe("sapel_linker").to_bytes(), exclude=[part])
    after = linker.linker_kb
    assert after is not before
    for other in KB_PARTS:
        assert (getattr(after, other) is getattr(before, other)) == (other == part)
    assert linked(loaded) == linked(nlp)


@pytest.mark.parametrize("how", ["disk", "bytes"])
def test_an_excluded_reranker_is_not_read(nlp, saved, how):
    loaded = spacy.load(saved)
    linker = loaded.get_pipe("sapel_linker")
    train(linker, 2.0)
    load = (
        (lambda **kw: linker.from_disk(saved / "sapel_linker", **kw))
        if how == "disk"
        else (lambda **kw: linker.from_bytes(nlp.get_pipe("sapel_linker").to_bytes(), **kw))
    )
    load(exclude=["reranker"])
    assert set(linker.reranker.weights) == {2.0}
    load()
    assert set(linker.reranker.weights) == {1.0}


@pytest.mark.parametrize("part", ["encoder", "kb", "index"])
def test_excluding_a_needed_part_with_no_kb_to_keep_is_a_coded_error(nlp, saved, part):
    _, linker = blank_linker()
    with pytest.raises(SapelError, match=rf"E360.*{part} excluded"):
        linker.from_disk(saved / "sapel_linker", exclude=[part])
    with pytest.raises(SapelError, match=rf"E360.*{part} excluded"):
        linker.from_bytes(nlp.get_pipe("sapel_linker").to_bytes(), exclude=[part])
    assert linker.linker_kb is None


def test_optional_parts_excluded_with_no_kb_to_keep_are_left_out(nlp, saved):
    _, linker = blank_linker()
    linker.from_disk(saved / "sapel_linker", exclude=["sparse", "meta", "reranker", "cfg"])
    assert linker.linker_kb.sparse is None and linker.linker_kb.device == "auto"
    assert not linker.reranker.is_trained


@pytest.mark.parametrize("part", ["encoder", "kb", "index"])
def test_a_needed_part_left_out_on_save_is_a_coded_error_on_load(nlp, tmp_path, part):
    nlp.to_disk(tmp_path / "p", exclude=["sapel_linker"])
    nlp.get_pipe("sapel_linker").to_disk(tmp_path / "p" / "sapel_linker", exclude=[part])
    with pytest.raises(IndexLoadError, match=rf"E320.*sapel_linker.*{part}/ missing"):
        spacy.load(tmp_path / "p")
    _, linker = blank_linker()
    with pytest.raises(IndexLoadError, match=rf"E320.*sapel_linker.*{part}/ missing"):
        linker.from_bytes(nlp.get_pipe("sapel_linker").to_bytes(exclude=[part]))


def test_a_sparse_index_left_out_on_save_is_a_coded_error_when_the_linker_needs_it(nlp, tmp_path):
    nlp.to_disk(tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / "sapel_linker" / "sparse")
    with pytest.raises(SapelError, match="E311"):
        spacy.load(tmp_path / "p")
    no_sparse = {"components": {"sapel_linker": {"sparse_weight": 0.0}}}
    assert spacy.load(tmp_path / "p", config=no_sparse).get_pipe("sapel_linker").linker_kb.sparse is None


def test_an_excluded_linker_is_neither_written_nor_silently_skipped(nlp, tmp_path):
    nlp.to_disk(tmp_path / "p", exclude=["sapel_linker"])
    assert not (tmp_path / "p" / "sapel_linker").exists()
    with pytest.raises(IndexLoadError, match=r"E361.*exclude=\['sapel_linker'\]"):
        spacy.load(tmp_path / "p")
    assert "sapel_linker" not in spacy.load(tmp_path / "p", exclude=["sapel_linker"]).pipe_names


def test_device_survives_a_round_trip(toy_kb_dir, tmp_path):
    nlp = make_nlp(toy_kb_dir, device="cpu")
    assert nlp.get_pipe("sapel_linker").linker_kb.device == "cpu"
    nlp.to_disk(tmp_path / "p")
    from_disk = spacy.load(tmp_path / "p").get_pipe("sapel_linker").linker_kb
    other = spacy.blank("en")
    other.add_pipe("sapel_linker", config={"sparse_weight": 0.2})
    from_bytes = other.from_bytes(nlp.to_bytes()).get_pipe("sapel_linker").linker_kb
    for linker_kb in (from_disk, from_bytes):
        assert (linker_kb.device, linker_kb.index.device, linker_kb.encoder.device) == ("cpu",) * 3
    assert LinkerKB.from_disk(tmp_path / "p" / "sapel_linker").device == "cpu"
    assert LinkerKB.from_disk(tmp_path / "p" / "sapel_linker", device="auto").device == "auto"


def test_a_linker_saved_before_the_device_was_saved_loads_unchanged(nlp, tmp_path):
    """The layout of earlier versions: the same parts without meta.json, and bytes
    without a meta key."""
    nlp.to_disk(tmp_path / "p")
    (tmp_path / "p" / "sapel_linker" / "meta.json").unlink()
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("sapel_linker").linker_kb.device == "auto"
    assert linked(loaded) == linked(nlp)
    msg = srsly.msgpack_loads(nlp.get_pipe("sapel_linker").to_bytes())
    del msg["meta"]
    other = spacy.blank("en")
    other.add_pipe("sapel_linker", config={"top_k": 3, "sparse_weight": 0.2})
    other.get_pipe("sapel_linker").from_bytes(srsly.msgpack_dumps(msg))
    assert other.get_pipe("sapel_linker").linker_kb.device == "auto"


@pytest.mark.parametrize(
    "meta,problem",
    [("[1, 2]", "it is a list"), ('{"device": 3}', "its device is 3"), ("{", "it is not JSON")],
)
def test_unreadable_kb_metadata_is_a_coded_error(toy_linker_kb, tmp_path, meta, problem):
    toy_linker_kb.to_disk(tmp_path / "kb")
    (tmp_path / "kb" / "meta.json").write_text(meta)
    with pytest.raises(IndexLoadError, match=rf"E362.*meta.json.*{problem}"):
        LinkerKB.from_disk(tmp_path / "kb")
    assert LinkerKB.from_disk(tmp_path / "kb", exclude=["meta"]).device == "auto"


def test_bad_kb_bytes_are_a_coded_error(toy_linker_kb):
    with pytest.raises(IndexLoadError, match="E363.*not valid msgpack"):
        LinkerKB.from_bytes(b"\xc1")
    with pytest.raises(IndexLoadError, match="E363.*index missing"):
        LinkerKB.from_bytes(toy_linker_kb.to_bytes(exclude=["index"]))
    loaded = LinkerKB.from_bytes(toy_linker_kb.to_bytes(exclude=["index"]), exclude=["index"],
                                 keep=toy_linker_kb)
    assert loaded.index is toy_linker_kb.index and loaded.kb is not toy_linker_kb.kb


@pytest.mark.parametrize(
    "device,expected",
    [
        ("auto", ("auto", "auto")),
        ("cpu", ("cpu", "cpu")),
        ("cuda", ("cuda", "gpu")),
        ("cuda:1", ("cuda:1", "gpu")),
        ("gpu", ("cuda", "gpu")),
        ("faiss-gpu", ("cuda", "faiss-gpu")),
        ("torch-gpu", ("cuda", "torch-gpu")),
    ],
)
def test_one_device_name_places_the_encoder_and_the_index(device, expected):
    """The encoder says "cuda", the index "gpu": either kind of name places both."""
    assert part_devices(device) == expected


@pytest.mark.parametrize("device", ["GPU", "cuda:", "cuda:x", "mps", ""])
def test_an_unknown_device_is_refused_naming_the_choices(device):
    with pytest.raises(SapelError, match=r"E365.*cuda:N.*torch-gpu"):
        part_devices(device)


@pytest.mark.parametrize("device", ["cuda:1", "torch-gpu"])
def test_loading_gives_the_encoder_and_the_index_their_own_device_names(
    toy_kb_dir, monkeypatch, device
):
    """LinkerKB.from_disk passes each part the name it understands (the GPUs are
    stubbed: the parts load on the CPU and record what they were asked for)."""
    seen = {}
    load_encoder, load_index = SapEncoder.from_disk, DenseIndex.from_disk

    def encoder_from_disk(path, *, device, runtime=None):
        seen["encoder"] = device
        return load_encoder(path, device="cpu", runtime=runtime)

    def index_from_disk(path, *, device):
        seen["index"] = device
        return load_index(path, device="cpu")

    monkeypatch.setattr(SapEncoder, "from_disk", encoder_from_disk)
    monkeypatch.setattr(DenseIndex, "from_disk", index_from_disk)
    linker_kb = LinkerKB.from_disk(toy_kb_dir, device=device)
    assert (seen["encoder"], seen["index"]) == part_devices(device)
    assert linker_kb.device == device


def test_the_kb_dir_loader_keeps_the_saved_device_unless_told(toy_linker_kb, tmp_path):
    """sapel.load_kb_dir.v1 used to pass device="auto" explicitly, overriding the
    device build-kb saved with the KB."""
    toy_linker_kb.to_disk(tmp_path / "kb")
    meta = srsly.read_json(tmp_path / "kb" / "meta.json")
    srsly.write_json(tmp_path / "kb" / "meta.json", {**meta, "device": "cpu"})
    load = spacy.registry.misc.get("sapel.load_kb_dir.v1")
    assert load(tmp_path / "kb")().device == "cpu"
    assert load(tmp_path / "kb", device="auto")().device == "auto"


def test_saving_over_a_pipeline_removes_the_parts_it_no_longer_has(toy_kb_dir, tmp_path):
    """A linker saved where one with a sparse index and a trained reranker was saved
    loads as itself, not with the earlier parts; other files and excluded parts stay."""
    make_nlp(toy_kb_dir).to_disk(tmp_path / "p")
    linker_dir = tmp_path / "p" / "sapel_linker"
    assert (linker_dir / "sparse").is_dir() and (linker_dir / "reranker").exists()
    (linker_dir / "notes.txt").write_text("mine")
    plain = spacy.blank("en")
    plain.add_pipe("sapel_linker", config={"top_k": 3, "reranker": {"@misc": "sapel.linear_reranker.v1"}})
    plain.get_pipe("sapel_linker").initialize(kb_loader=spacy.registry.misc.get("sapel.load_kb_dir.v1")(toy_kb_dir))
    assert plain.get_pipe("sapel_linker").linker_kb.sparse is None
    plain.to_disk(tmp_path / "p")
    assert not (linker_dir / "sparse").exists() and not (linker_dir / "reranker").exists()
    assert (linker_dir / "notes.txt").read_text() == "mine"
    loaded = spacy.load(tmp_path / "p").get_pipe("sapel_linker")
    assert loaded.linker_kb.sparse is None and not loaded.reranker.is_trained
    # a part named in exclude is neither written nor removed
    make_nlp(toy_kb_dir).get_pipe("sapel_linker").to_disk(linker_dir)
    plain.get_pipe("sapel_linker").to_disk(linker_dir, exclude=["sparse", "reranker"])
    assert (linker_dir / "sparse").is_dir() and (linker_dir / "reranker").exists()
    # a folder no linker was saved in keeps folders that happen to share a part's name
    (tmp_path / "mine" / "sparse").mkdir(parents=True)
    spacy.blank("en").add_pipe("sapel_linker").to_disk(tmp_path / "mine")
    assert (tmp_path / "mine" / "sparse").is_dir() and (tmp_path / "mine" / "cfg").is_file()


def test_write_parts_honours_meta_in_exclude(toy_linker_kb, tmp_path):
    """Reading and bytes call the part "meta"; writing used to know only "meta.json"."""
    toy_linker_kb.write_parts(tmp_path / "d", exclude=["meta"])
    assert (tmp_path / "d" / "index").exists() and not (tmp_path / "d" / "meta.json").exists()
