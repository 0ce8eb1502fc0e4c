"""pretrain-sap configs/sap.cfg -> configs/sap_finetune.cfg -> build-kb --train-mentions
-> evaluate-linking, overrides, resume and clear failures for bad SAP configs and input,
with a tiny local BERT."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from pathlib import Path

import pytest
import srsly
from thinc.api import Config
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import KnowledgeBase

runner = CliRunner()
CONFIGS = Path(__file__).parents[2] / "configs"
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


def sap(output, vocab, encoder, *args, config="sap.cfg"):
    """pretrain-sap on a config with the inputs filled in, on the CPU (not invoked)."""
    return [
        "pretrain-sap", str(CONFIGS / config), str(output), "--paths.kb", str(vocab),
        "--paths.encoder", str(encoder), "--device", "cpu", *(str(a) for a in args),
    ]


def failure(args):
    """The coded message a pretrain-sap run ends with."""
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    return str(result.exception)


def test_pretrain_finetune_build_and_evaluate(files, tiny_bert_dir):
    root, vocab, corpus, queries = files
    sap_dir = root / "sap"
    invoke(*sap(sap_dir, vocab, tiny_bert_dir, "--sap.pooling", "mean",
                "--sap.training.batch_size", "8", "--sap.training.max_steps", "2",
                "--sap.training.lr", "1e-3"))
    log = srsly.read_json(sap_dir / "training.json")
    assert log["result"]["steps"] == 2 and log["settings"]["batch_size"] == 8
    # the filled config: the overrides, the config file's settings and the defaults
    saved = Config().from_disk(sap_dir / "config.cfg")
    assert saved["sap"]["training"]["lr"] == 1e-3 and saved["sap"]["training"]["batch_size"] == 8
    assert saved["sap"]["training"]["warmup_ratio"] == 0.05 and saved["sap"]["training"]["alpha"] == 1.0
    assert saved["paths"]["kb"] == saved["sap"]["kb_paths"] == str(vocab)
    assert saved["sap"]["max_pairs_per_concept"] == 50
    sap_model = SapEncoder.from_disk(sap_dir / "model-last", device="cpu")
    assert sap_model.pooling == "mean"

    ft = root / "ft"
    invoke(*sap(ft, vocab, sap_dir / "model-last", "--paths.corpus", corpus,
                "--sap.training.batch_size", "4", config="sap_finetune.cfg"))
    assert srsly.read_json(ft / "training.json")["recipe"]["corpus"] == str(corpus)
    assert Config().from_disk(ft / "config.cfg")["sap"]["corpus_aliases"] is True

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
        "-e", f"sap={sap_dir / 'model-last'}", "-e", f"ft={ft / 'model-last'}",
        "--train-mentions", corpus, "--device", "cpu", "-o", report,
    )
    assert "acc@1" in result.output and "ft" in result.output
    rows = json.loads(report.read_text())["results"]
    assert [r["encoder"] for r in rows] == ["base", "sap", "ft"]
    assert all(0 <= r["acc@1"] <= r["acc@5"] <= 1 for r in rows)
    assert json.loads(report.read_text())["n_queries"] == 3
    # the KB directory can be evaluated too
    invoke("evaluate-linking", corpus, "--kb-dir", kb_dir, "-e", ft / "model-last", "--device", "cpu")


def test_resume_continues_with_the_same_config_and_refuses_another(files, tiny_bert_dir):
    root, vocab, *_ = files
    out = root / "resume"
    settings = ("--sap.training.batch_size", "4", "--sap.training.max_steps", "3")
    # a time budget that ends the run after its first step (a checkpoint is written)
    invoke(*sap(out, vocab, tiny_bert_dir, *settings, "--sap.training.max_seconds", "1e-9"))
    assert srsly.read_json(out / "training.json")["result"]["steps"] == 1
    checkpoint = (out / "checkpoint" / "state.pt").read_bytes()
    # another learning rate: refused, naming the setting, before any step
    message = failure(sap(out, vocab, tiny_bert_dir, *settings, "--sap.training.lr", "1e-3", "--resume"))
    assert "E635" in message and "sap.training.lr: 2e-05 -> 0.001" in message
    assert (out / "checkpoint" / "state.pt").read_bytes() == checkpoint
    # the same config (the time budget may change): continues to the last step
    invoke(*sap(out, vocab, tiny_bert_dir, *settings, "--resume"))
    log = srsly.read_json(out / "training.json")
    assert log["result"]["steps"] == 3 and [h["step"] for h in log["history"] if "loss" in h] == [1, 2, 3]
    assert Config().from_disk(out / "config.cfg")["sap"]["training"]["max_seconds"] == 0.0
    # a run that saved no config cannot be resumed
    assert "E636" in failure(sap(root / "never", vocab, tiny_bert_dir, "--resume"))


@pytest.mark.parametrize(
    "override,code,named",
    [
        (("--sap.training.lr_rate", "1e-3"), "E630", "'lr_rate'"),
        (("--sap.training.batch_size", "many"), "E631", "batch_size='many'"),
        (("--sap.epochs", "3"), "E632", "sap.epochs: unexpected argument"),
        (("--sap.max_length", "long"), "E632", "sap.max_length"),
        (("--sap.nothing.here", "1"), "E632", "sap.nothing.here"),
        (("--paths.kb", "missing.tsv"), "E637", "missing.tsv"),
        (("--sap.training.batching", "sorted"), "E602", "batching='sorted'"),
        (("--sap.objective", "biosyn"), "E622", "'biosyn'"),
        (("--lr", "1e-3"), "E638", "--lr"),
    ],
)
def test_a_bad_setting_is_refused_before_training(files, tiny_bert_dir, override, code, named):
    root, vocab, *_ = files
    out = root / f"bad_{code}"
    message = failure(sap(out, vocab, tiny_bert_dir, *override))
    assert code in message and named in message
    assert not out.exists()


def test_an_empty_path_is_named(files, tiny_bert_dir):
    root, vocab, corpus, _ = files
    args = ["pretrain-sap", str(CONFIGS / "sap.cfg"), str(root / "x"), "--device", "cpu"]
    assert "E634" in failure(args) and "--paths.kb" in failure(args)
    args = sap(root / "x", vocab, tiny_bert_dir, config="sap_finetune.cfg")
    assert "E634" in failure(args) and "--paths.corpus" in failure(args)
    assert not (root / "x").exists()


def test_an_output_that_is_an_input_is_refused_before_training(files, tiny_bert_dir):
    """Fine-tuning OUT/model-last into OUT would replace the base encoder."""
    root, vocab, corpus, _ = files
    out = root / "in_place"
    invoke(*sap(out, vocab, tiny_bert_dir, "--sap.training.batch_size", "4", "--sap.training.max_steps", "1"))
    saved = (out / "config.cfg").read_text()
    message = failure(sap(out, vocab, out / "model-last", "--paths.corpus", corpus, config="sap_finetune.cfg"))
    assert "E421" in message and "model-last" in message
    assert (out / "config.cfg").read_text() == saved


def test_pairs_file_with_one_column_fails_cleanly(files, tiny_bert_dir):
    root, *_ = files
    bad = root / "pairs.tsv"
    bad.write_text("1\tflu\tinfluenza\nonly one column\n", encoding="utf8")
    proc = subprocess.run(
        [sys.executable, "-m", "spacy_sapel", "pretrain-sap", str(CONFIGS / "sap.cfg"),
         str(root / "bad"), "--sap.kb_paths", "null", "--sap.pairs_path", str(bad),
         "--paths.encoder", str(tiny_bert_dir), "--device", "cpu"],
        capture_output=True, text=True, env=ENV,
    )
    assert proc.returncode == 1
    assert "[E002]" in proc.stdout + proc.stderr and "line 2" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_input_and_small_batch(files, tiny_bert_dir):
    root, vocab, *_ = files
    assert "E608" in failure(sap(root / "x", vocab, tiny_bert_dir, "--sap.kb_paths", "null"))
    assert "E604" in failure(sap(root / "x", vocab, tiny_bert_dir, "--sap.training.batch_size", "1"))


def test_retrieval_objective(files, tiny_bert_dir):
    root, vocab, corpus, _ = files
    out = root / "retrieval"
    retrieval = ("--paths.corpus", corpus, "--sap.objective", "retrieval")
    result = invoke(*sap(
        out, vocab, tiny_bert_dir, *retrieval, "--sap.training.n_candidates", "3",
        "--sap.training.refresh_every", "1", "--sap.training.refresh_names", "2",
        "--sap.training.max_steps", "2", "--sap.training.batch_size", "2", config="sap_finetune.cfg",
    ))
    assert "2 candidate refreshes" in " ".join(result.output.split())
    log = srsly.read_json(out / "training.json")
    assert log["objective"] == "retrieval" and log["settings"]["n_candidates"] == 3
    assert [r["step"] for r in log["result"]["refreshes"]] == [0, 1]
    # the retrieval config's defaults, not SAP's, fill the saved config
    training = Config().from_disk(out / "config.cfg")["sap"]["training"]
    assert training["scale"] == 20.0 and "batching" not in training
    SapEncoder.from_disk(out / "model-last", device="cpu")
    message = failure(sap(root / "y", vocab, tiny_bert_dir, *retrieval,
                          "--sap.training.batching", "hard", config="sap_finetune.cfg"))
    assert "E630" in message and "'batching'" in message
    message = failure(sap(root / "y", vocab, tiny_bert_dir, *retrieval,
                          "--sap.validation_fraction", "0.1", config="sap_finetune.cfg"))
    assert "E621" in message and "validation_fraction" in message
    message = failure(sap(root / "y", vocab, tiny_bert_dir, "--sap.objective", "retrieval"))
    assert "E620" in message
