"""Ray: KB encoding in an actor pool and corpus annotation in an actor pool give the
single-process results. Runs on a local Ray (2 CPUs); skipped when Ray is absent."""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import spacy
from sapel_test_utils import linker_nlp
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_sapel import _compat
from spacy_sapel.cli import app
from spacy_sapel.pipeline.annotate import annotate
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.errors import InputFileError
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.describe import describe_entities
from spacy_sapel.training import read_jsonl_docs
from spacy_sapel.training.jsonl import doc_from_input_line

PACKAGE_DIR = Path(_compat.__file__).parent
runner = CliRunner()
needs_ray = pytest.mark.skipif(not _compat.HAS_RAY, reason="ray is not installed")

CONCEPTS = [
    Concept("C1", "headache", ["head ache", "head pain"]),
    Concept("C2", "myocardial infarction", ["heart attack", "MI"]),
    Concept("C3", "chronic kidney disease", ["CKD", "chronic kidney failure"]),
    Concept("C4", "influenza", ["flu"]),
    Concept("C5", "asthma"),
]
MENTIONS = ["headache", "heart attack", "CKD", "flu", "asthma", "head pain", "MI", "fever"]


@pytest.fixture(scope="module")
def ray_local():
    if not _compat.HAS_RAY:
        pytest.skip("ray is not installed")
    ray = _compat.import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory, encoder):
    linker_kb = LinkerKB.build(KnowledgeBase.from_concepts(CONCEPTS), encoder)
    nlp = linker_nlp(linker_kb, **{"top_k": 3})
    path = tmp_path_factory.mktemp("pipeline") / "nlp"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    records = []
    for i in range(23):
        a, b = MENTIONS[i % len(MENTIONS)], MENTIONS[(3 * i + 1) % len(MENTIONS)]
        text = f"Doc {i}: {a} and {b}."
        start_a = text.index(a)
        start_b = text.index(b, start_a + len(a))
        records.append({"text": text, "ents": [
            {"start": start_a, "end": start_a + len(a), "label": "DISEASE"},
            {"start": start_b, "end": start_b + len(b), "label": "DISEASE"},
        ]})
    srsly.write_jsonl(path, records)
    return path


def single_process(pipeline_dir, corpus):
    """What the `link` command writes for ``corpus``."""
    nlp = spacy.load(pipeline_dir)
    return [
        {"text": doc.text, "ents": describe_entities(nlp, doc)}
        for doc in annotate(nlp, read_jsonl_docs(nlp, corpus))
    ]


def assert_same_records(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g["text"] == e["text"]
        assert [(x["kb_id"], [c["id"] for c in x["candidates"]]) for x in g["ents"]] == [
            (x["kb_id"], [c["id"] for c in x["candidates"]]) for x in e["ents"]
        ]
        for x, y in zip(g["ents"], e["ents"]):
            assert x["score"] == pytest.approx(y["score"], abs=1e-5)


@needs_ray
def test_build_kb_ray_equals_build(ray_local, encoder):
    """One build path: ``LinkerKB.build`` with the Ray embedder builds what it builds
    alone, the sparse index included."""
    from spacy_sapel.distributed import ray_embedder

    kb = KnowledgeBase.from_concepts(CONCEPTS)
    reference = LinkerKB.build(kb, encoder, index_type="auto", sparse=True)
    built = LinkerKB.build(
        kb, encoder, index_type="auto", sparse=True,
        embed=ray_embedder(encoder, num_actors=2, rows_per_task=4),
    )
    assert built.index.index_type == "flat" and built.index.ntotal == kb.n_names
    assert built.sparse is not None and built.sparse.ntotal == kb.n_names
    n = kb.n_names
    np.testing.assert_allclose(
        built.index.faiss_index.reconstruct_n(0, n),
        reference.index.faiss_index.reconstruct_n(0, n),
        atol=1e-5,
    )
    for weight in (0.0, 0.5):
        got = built.search(MENTIONS, top_k=3, sparse_weight=weight)
        expected = reference.search(MENTIONS, top_k=3, sparse_weight=weight)
        assert [[c for c, _ in r] for r in got] == [[c for c, _ in r] for r in expected]


@needs_ray
def test_build_kb_ray_cli_takes_the_options_of_build_kb(ray_local, tiny_bert_dir, tmp_path):
    vocab = tmp_path / "kb.tsv"
    vocab.write_text("1\theadache\n1\thead pain\n2\tinfluenza\n2\tflu\n3\tasthma\n", encoding="utf8")
    common = [str(vocab), "--encoder", str(tiny_bert_dir), "--sparse", "--runtime", "torch"]
    for command, out in (("build-kb", "local"), ("build-kb-ray", "ray")):
        result = runner.invoke(app, [command, *common, "-o", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    local, ray = (LinkerKB.from_disk(tmp_path / out) for out in ("local", "ray"))
    assert ray.sparse is not None and ray.sparse.ntotal == local.sparse.ntotal == 5
    got, expected = (
        kb.search(["influenzas", "head ache"], top_k=2, sparse_weight=0.5) for kb in (ray, local)
    )
    assert [[c for c, _ in r] for r in got] == [[c for c, _ in r] for r in expected]
    assert [s for r in got for _, s in r] == pytest.approx([s for r in expected for _, s in r], abs=1e-5)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@needs_ray
def test_actor_pools_use_no_deprecated_ray_api(ray_local, encoder, pipeline_dir, corpus, tmp_path):
    """Ray Data reports deprecated arguments (``concurrency=`` since Ray 2.51) as
    warnings on its ``ray.data`` logger, which does not propagate: listen there, and to
    Python's DeprecationWarnings, while both actor pools run."""
    from spacy_sapel.distributed import annotate_ray, encode_names_ray

    encoder_dir = tmp_path / "encoder"
    encoder.to_disk(encoder_dir)
    handler = _Records()
    ray_logger = logging.getLogger("ray.data")
    ray_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            vectors = encode_names_ray(MENTIONS, encoder_dir, num_actors=1, rows_per_task=4)
            annotate_ray(pipeline_dir, corpus, tmp_path / "out", num_actors=1)
    finally:
        ray_logger.removeHandler(handler)
    assert vectors.shape == (len(MENTIONS), encoder.dim)
    deprecated = [r.getMessage() for r in handler.records if "deprecat" in r.getMessage().lower()]
    # Ray's own internals warn too (DataContext fields): only warnings raised at a
    # call in spacy_sapel count
    deprecated += [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)
                   and Path(w.filename).is_relative_to(PACKAGE_DIR)]
    assert deprecated == []


@needs_ray
def test_annotate_ray_docbin_shards(ray_local, pipeline_dir, corpus, tmp_path):
    from spacy_sapel.distributed import annotate_ray

    counts = annotate_ray(pipeline_dir, corpus, tmp_path / "out", output_format="docbin",
                          num_actors=1, docs_per_task=8)
    # one DocBin per task; Ray may cut tasks smaller at block boundaries
    assert counts["docs"] == 23 and counts["shards"] >= 3
    nlp = spacy.load(pipeline_dir)
    docs = [doc for shard in sorted((tmp_path / "out").glob("part-*.spacy"))
            for doc in DocBin().from_disk(shard).get_docs(nlp.vocab)]
    expected = single_process(pipeline_dir, corpus)
    assert [[e.kb_id_ for e in doc.ents] for doc in docs] == [
        [x["kb_id"] for x in record["ents"]] for record in expected
    ]
    assert docs[0].ents[0]._.kb_candidates[0][0] == expected[0]["ents"][0]["kb_id"]


@needs_ray
def test_annotate_ray_cli(ray_local, pipeline_dir, corpus, tmp_path):
    from spacy_sapel.distributed import read_jsonl_shards

    result = runner.invoke(app, ["annotate-ray", str(pipeline_dir), str(corpus), "-o",
                                 str(tmp_path / "out"), "--num-actors", "2",
                                 "--docs-per-task", "4", "--shard-size", "10"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in sorted((tmp_path / "out").iterdir())] == [
        "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"
    ]
    assert_same_records(read_jsonl_shards(tmp_path / "out"), single_process(pipeline_dir, corpus))


@needs_ray
def test_annotate_ray_bad_record(ray_local, pipeline_dir, tmp_path):
    from spacy_sapel.distributed import annotate_ray

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "flu", "ents": [{"start": 0, "end": 2, "label": "D"}]}) + "\n")
    # Ray Data hands the actor's InputFileError over as text: it is raised as one again
    with pytest.raises(InputFileError, match=r"^\[E002\] .*bad.jsonl, line 1") as failed:
        annotate_ray(pipeline_dir, bad, tmp_path / "out", num_actors=1)
    # raised after Ray's error was handled, not inside the handler: the error does not
    # keep Ray's traceback (and with it the actor pool and its CPUs) alive
    assert failed.value.__context__ is None
    assert not (tmp_path / "out").exists()
    bad.write_text(json.dumps({"text": "flu"}) + "\n" + json.dumps({"text": "flu", "ents": [{"start": "0", "end": 3, "label": "D"}]}) + "\n")
    with pytest.raises(InputFileError, match=r"^\[E002\] .*bad.jsonl, line 2: .*offsets '0':3"):
        annotate_ray(pipeline_dir, bad, tmp_path / "out", num_actors=1)
    with pytest.raises(ValueError, match="E402.*output format"):
        annotate_ray(pipeline_dir, bad, tmp_path / "out", output_format="csv")


@pytest.mark.parametrize("command", ["build-kb-ray", "annotate-ray"])
def test_commands_without_ray_say_how_to_install_it(monkeypatch, command, tmp_path, corpus):
    monkeypatch.setattr(_compat, "HAS_RAY", False)
    args = {"build-kb-ray": [str(corpus), "-o", str(tmp_path / "kb")],
            "annotate-ray": [str(tmp_path), str(corpus), "-o", str(tmp_path / "out")]}[command]
    result = runner.invoke(app, [command, *args])
    assert result.exit_code == 1
    assert "E701" in result.output and "spacy-sapel[ray]" in result.output
    with pytest.raises(ImportError, match="E701"):
        _compat.import_ray()


@pytest.mark.parametrize(
    "ent,match",
    [
        ({"start": "0", "end": 3, "label": "D"}, "offsets '0':3"),
        ({"start": 0, "end": 3, "label": 5}, "label 5"),
        ({"start": 0, "end": 3, "label": ""}, "label ''"),
    ],
)
def test_ray_records_are_checked_as_the_jsonl_reader_does(ent, match, tmp_path):
    """The actors read lines with the JSONL reader; Ray's lines come without their
    numbers, so the number is found in the file (the reader's error, word for word)."""
    line = json.dumps({"text": "flu and more", "ents": [ent]})
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "flu"}) + "\n\n" + line + "\n", encoding="utf8")
    nlp = spacy.blank("en")
    with pytest.raises(InputFileError, match=rf"E002.*in.jsonl, line 3: .*{match}") as from_ray:
        doc_from_input_line(nlp, line, input_format="jsonl", source=str(path))
    with pytest.raises(InputFileError) as from_reader:
        list(read_jsonl_docs(nlp, path))
    assert str(from_ray.value) == str(from_reader.value)
    with pytest.raises(InputFileError, match=r"E002.*gone.jsonl, line \?: "):
        doc_from_input_line(nlp, line, input_format="jsonl", source=str(tmp_path / "gone.jsonl"))
