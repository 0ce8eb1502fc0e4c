"""pretrain-sap -> fine-tune -> build-kb --train-mentions -> evaluate-linking, and
clear failures for bad SAP input, with a tiny local BERT."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import srsly
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import KnowledgeBase

runner = CliRunner()
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

VOCAB = {
    "D1": ["headache", "head pain", "head ache", "pain in the head"],
    "D2": ["influenza", "flu", "the flu", "influenza fever"],
    "D3": ["asthma", "lung asthma", "chronic asthma"],
    "D4": ["kidney failure", "chronic kidney failure", "kidney disease"],
}
CORPUS = """1|t|Headache and flu.
1|a|Then asthma came.
1\t0\t8\tHeadache\tDisease\tD1
1\t13\t16\tflu\tDisease\tD2
1\t23\t29\tasthma\tDisease\tD3

2|t|Acute flu and kidney ache
2|a|x
2\t6\t9\tflu\tDisease\tD2
2\t14\t25\tkidney ache\tDisease\tD4

"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sap_cli")
    vocab = root / "vocab.tsv"
    vocab.write_text(
        "".join(f"{cid}\t{name}\n" for cid, names in VOCAB.items() for name in names),
        encoding="utf8",
    )
    corpus = root / "train.txt"
    corpus.write_text(CORPUS, encoding="utf8")
    queries = root / "queries.tsv"
    queries.write_text("D1\tpain in head\nD2\tflu fever\nD4|D3\tkidney ache\n", encoding="utf8")
    return root, vocab, corpus, queries


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_pretrain_finetune_build_and_evaluate(files, tiny_bert_dir):
    root, vocab, corpus, queries = files
    sap = root / "sap"
    invoke(
        "pretrain-sap", "-o", sap, "--kb", vocab, "--encoder", tiny_bert_dir, "--pooling",
        "mean", "--batch-size", "8", "--max-steps", "2", "--lr", "1e-3", "--device", "cpu",
    )
    log = srsly.read_json(sap / "training.json")
    assert log["result"]["steps"] == 2 and log["settings"]["batch_size"] == 8
    sap_model = SapEncoder.from_disk(sap / "model-last", device="cpu")
    assert sap_model.pooling == "mean"

    ft = root / "ft"
    invoke(
        "pretrain-sap", "-o", ft, "--kb", vocab, "--corpus", corpus, "--corpus-aliases",
        "--encoder", sap / "model-last", "--batch-size", "4", "--epochs", "1", "--device", "cpu",
    )
    assert srsly.read_json(ft / "training.json")["recipe"]["corpus"] == str(corpus)

    kb_dir = root / "kb"
    invoke(
        "build-kb", vocab, "-o", kb_dir, "--encoder", ft / "model-last", "--device", "cpu",
        "--train-mentions", corpus,
    )
    kb = KnowledgeBase.from_disk(kb_dir / "kb")
    assert "kidney ache" in kb["D4"].names()
    assert kb.meta["alias_sources"][f"train_mentions:{corpus}"] >= 1

    report = root / "report.json"
    result = invoke(
        "evaluate-linking", queries, "--kb", vocab, "-e", f"base={tiny_bert_dir}",
        "-e", f"sap={sap / 'model-last'}", "-e", f"ft={ft / 'model-last'}",
        "--train-mentions", corpus, "--device", "cpu", "-o", report,
    )
    assert "acc@1" in result.output and "ft" in result.output
    rows = json.loads(report.read_text())["results"]
    assert [r["encoder"] for r in rows] == ["base", "sap", "ft"]
    assert all(0 <= r["acc@1"] <= r["acc@5"] <= 1 for r in rows)
    assert json.loads(report.read_text())["n_queries"] == 3
    # the KB directory can be evaluated too
    invoke("evaluate-linking", corpus, "--kb-dir", kb_dir, "-e", ft / "model-last", "--device", "cpu")


def test_pairs_file_with_one_column_fails_cleanly(files, tiny_bert_dir):
    root, *_ = files
    bad = root / "pairs.tsv"
    bad.write_text("1\tflu\tinfluenza\nonly one column\n", encoding="utf8")
    proc = subprocess.run(
        [sys.executable, "-m", "spacy_sapel", "pretrain-sap", "-o", str(root / "bad"),
         "--pairs", str(bad), "--encoder", str(tiny_bert_dir), "--device", "cpu"],
        capture_output=True, text=True, env=ENV,
    )
    assert proc.returncode == 1
    assert "[E002]" in proc.stdout + proc.stderr and "line 2" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_input_and_small_batch(files, tiny_bert_dir):
    root, vocab, *_ = files
    result = runner.invoke(app, ["pretrain-sap", "-o", str(root / "x"), "--encoder", str(tiny_bert_dir)])
    assert "E608" in str(result.exception)
    result = runner.invoke(
        app, ["pretrain-sap", "-o", str(root / "x"), "--kb", str(vocab), "--batch-size", "1"]
    )
    assert "E604" in str(result.exception)


def test_retrieval_objective(files, tiny_bert_dir):
    root, vocab, corpus, _ = files
    out = root / "retrieval"
    result = invoke(
        "pretrain-sap", "-o", out, "--kb", vocab, "--corpus", corpus, "--objective", "retrieval",
        "--encoder", tiny_bert_dir, "--candidates", "3", "--refresh-every", "1",
        "--refresh-names", "2", "--max-steps", "2", "--batch-size", "2", "--device", "cpu",
    )
    assert "2 candidate refreshes" in " ".join(result.output.split())
    log = srsly.read_json(out / "training.json")
    assert log["objective"] == "retrieval" and log["settings"]["n_candidates"] == 3
    assert [r["step"] for r in log["result"]["refreshes"]] == [0, 1]
    SapEncoder.from_disk(out / "model-last", device="cpu")
    result = runner.invoke(
        app, ["pretrain-sap", "-o", str(root / "y"), "--kb", str(vocab), "--corpus", str(corpus),
              "--objective", "retrieval", "--batching", "hard"],
    )
    assert "E621" in str(result.exception) and "--batching" in str(result.exception)
    result = runner.invoke(app, ["pretrain-sap", "-o", str(root / "y"), "--kb", str(vocab), "--objective", "retrieval"])
    assert "E620" in str(result.exception)
