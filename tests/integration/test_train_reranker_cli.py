"""build-kb --train-mentions (aliases + priors) -> a linker pipeline -> train-reranker
-> spacy.load: the reranker travels with the pipeline."""
from __future__ import annotations

import numpy
import spacy
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.kb import KnowledgeBase
from spacy_sapel.pipeline import LinkerKB

runner = CliRunner()
VOCAB = {
    "D1": ["muscular dystrophy", "MD"],
    "D2": ["muscular dystrophy type 2", "MD"],
    "D3": ["asthma", "bronchial asthma"],
    "D4": ["hay fever", "allergic rhinitis"],
}
DOCS = [
    ("MD in a family", [(0, 2, "MD", "D2")]),
    ("asthma and MD", [(0, 6, "asthma", "D3"), (11, 13, "MD", "D2")]),
    ("hay fever or asthma", [(0, 9, "hay fever", "D4"), (13, 19, "asthma", "D3")]),
    ("allergic rhinitis seen", [(0, 17, "allergic rhinitis", "D4")]),
    ("the MD gene", [(4, 6, "MD", "D2"), (0, 3, "the", "-1")]),
]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def write_vocab(path):
    path.write_text("".join(f"{c}\t{n}\n" for c, ns in VOCAB.items() for n in ns), encoding="utf8")
    return path


def write_corpus(path, docs, first_id=0):
    lines = []
    for i, (title, mentions) in enumerate(docs, start=first_id):
        lines += [f"{i}|t|{title}", f"{i}|a|Abstract."]
        lines += [f"{i}\t{s}\t{e}\t{t}\tDisease\t{c}" for s, e, t, c in mentions]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def test_build_kb_priors_then_train_reranker(tmp_path, tiny_bert_dir):
    vocab = write_vocab(tmp_path / "vocab.tsv")
    corpus = write_corpus(tmp_path / "train.txt", DOCS)
    result = invoke(
        "build-kb", vocab, "-o", tmp_path / "kb", "--encoder", tiny_bert_dir, "--device", "cpu",
        "--train-mentions", corpus,
    )
    assert "Counted 7 mentions" in result.output and "no id: 1" in result.output
    kb = KnowledgeBase.from_disk(tmp_path / "kb" / "kb")
    assert kb["D2"].gold_count == 3 and kb.priors.mention_count("md", "D2") == 3

    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config={"top_k": 3}).set_kb(lambda: LinkerKB.from_disk(tmp_path / "kb", device="cpu"))
    nlp.to_disk(tmp_path / "base")
    result = invoke(
        "train-reranker", tmp_path / "base", corpus, "-o", tmp_path / "ranked", "--folds", "2",
        "--feature", "score", "--feature", "mention_prior", "--feature", "concept_prior",
    )
    assert "Reranker trained" in result.output
    loaded = spacy.load(tmp_path / "ranked")
    linker = loaded.get_pipe("sapel_linker")
    assert linker.reranker.is_trained and linker.reranker.features == ["score", "mention_prior", "concept_prior"]
    assert loaded.config["components"]["sapel_linker"]["reranker"]["@misc"] == "sapel.linear_reranker.v1"
    assert numpy.all(numpy.isfinite(linker.reranker.weights))


def test_train_reranker_refuses_an_output_it_may_not_replace_before_loading(tmp_path):
    """The output is checked before the pipeline loads (the pipeline path here does
    not even exist): a folder of the user's, or the pipeline being read, is refused."""
    corpus = tmp_path / "train.txt"
    corpus.write_text("0|t|MD.\n0\t0\t2\tMD\tDisease\tD2\n", encoding="utf8")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.txt").write_text("mine", encoding="utf8")
    for output, code in ((notes, "E423"), (tmp_path / "missing_pipeline", "E421")):
        result = runner.invoke(
            app, ["train-reranker", str(tmp_path / "missing_pipeline"), str(corpus), "-o", str(output)]
        )
        assert result.exit_code != 0 and code in str(result.exception), result.exception
    assert (notes / "README.txt").read_text(encoding="utf8") == "mine"


def test_training_and_development_corpora_together(tmp_path, tiny_bert_dir):
    """The packaged pipeline's recipe (project.yml's finalize step): build-kb takes
    each corpus's unambiguous mentions as aliases (a string that the two link to
    different concepts becomes an alias of both, and the priors choose), and
    train-reranker learns from both corpora's documents."""
    vocab = write_vocab(tmp_path / "vocab.tsv")
    train = write_corpus(tmp_path / "train.txt", DOCS + [("wheezing at night", [(0, 8, "wheezing", "D3")])])
    dev = write_corpus(tmp_path / "dev.txt", [
        ("wheezing in spring", [(0, 8, "wheezing", "D4")]),
        ("sneezing and MD", [(0, 8, "sneezing", "D4"), (13, 15, "MD", "D2")]),
    ], first_id=100)
    invoke(
        "build-kb", vocab, "-o", tmp_path / "kb", "--encoder", tiny_bert_dir, "--device", "cpu",
        "--train-mentions", train, "--train-mentions", dev,
    )
    kb = KnowledgeBase.from_disk(tmp_path / "kb" / "kb")
    assert "sneezing" in kb["D4"].names()
    assert "wheezing" in kb["D3"].names() and "wheezing" in kb["D4"].names()
    assert kb.priors.mention_count("wheezing", "D3") == 1 and kb.priors.mention_count("wheezing", "D4") == 1
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config={"top_k": 3}).set_kb(lambda: LinkerKB.from_disk(tmp_path / "kb", device="cpu"))
    nlp.to_disk(tmp_path / "base")
    result = invoke("train-reranker", tmp_path / "base", train, dev, "-o", tmp_path / "ranked", "--folds", "2")
    # 8 mentions with ids in training (its NIL mention is skipped), 3 in development
    assert "'mentions': 11, 'no id': 1" in " ".join(result.output.split())
    assert spacy.load(tmp_path / "ranked").get_pipe("sapel_linker").reranker.is_trained


def test_a_corpus_given_twice_is_refused_before_any_work(tmp_path):
    """Its mentions would count twice as priors: refused before the encoder or the
    pipeline loads (neither exists here) and before any output is written."""
    vocab = write_vocab(tmp_path / "vocab.tsv")
    corpus = write_corpus(tmp_path / "train.txt", DOCS)
    commands = (
        ["build-kb", vocab, "-o", tmp_path / "kb", "--encoder", tmp_path / "no_encoder",
         "--train-mentions", corpus, "--train-mentions", tmp_path / "." / "train.txt"],
        ["train-reranker", tmp_path / "no_pipeline", corpus, corpus, "-o", tmp_path / "ranked"],
        ["evaluate-linking", corpus, "--kb", vocab, "--encoder", tmp_path / "no_encoder",
         "--train-mentions", corpus, "--train-mentions", corpus],
    )
    for args in commands:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code != 0 and "E406" in str(result.exception), (args[0], result.output, result.exception)
        assert "train.txt" in str(result.exception)
    assert not (tmp_path / "kb").exists() and not (tmp_path / "ranked").exists()


def test_train_reranker_checks_its_options_before_loading(tmp_path):
    """An unknown feature or too few folds is refused before the pipeline (missing
    here) loads or any corpus is read."""
    corpus = write_corpus(tmp_path / "train.txt", DOCS)
    for extra, code in ((["--feature", "colour"], "E354"), (["--folds", "1"], "E702")):
        result = runner.invoke(
            app, ["train-reranker", str(tmp_path / "no_pipeline"), str(corpus), "-o", str(tmp_path / "ranked"), *extra]
        )
        assert result.exit_code != 0 and code in str(result.exception), (extra, result.exception)
    assert not (tmp_path / "ranked").exists()
