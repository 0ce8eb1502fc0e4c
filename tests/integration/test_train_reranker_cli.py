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


def test_build_kb_priors_then_train_reranker(tmp_path, tiny_bert_dir):
    vocab = tmp_path / "vocab.tsv"
    vocab.write_text("".join(f"{c}\t{n}\n" for c, ns in VOCAB.items() for n in ns), encoding="utf8")
    corpus = tmp_path / "train.txt"
    lines = []
    for i, (title, mentions) in enumerate(DOCS):
        lines += [f"{i}|t|{title}", f"{i}|a|Abstract."]
        lines += [f"{i}\t{s}\t{e}\t{t}\tDisease\t{c}" for s, e, t, c in mentions]
        lines.append("")
    corpus.write_text("\n".join(lines) + "\n", encoding="utf8")
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
