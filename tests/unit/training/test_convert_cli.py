"""`python -m spacy_sapel convert`: corpora to .spacy with counted problems."""
from __future__ import annotations

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_sapel.cli import app

runner = CliRunner()


def test_convert_pubtator_with_label_map(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text("1|t|Flu and xyz.\n1|a|Text.\n1\t0\t3\tFlu\tSpecificDisease\tD1\n"
                   "1\t8\t11\txyz\tGene\t5\n", encoding="utf8")
    out = tmp_path / "c.spacy"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out), "-l", "SpecificDisease=Disease"])
    assert result.exit_code == 0, result.output
    assert "unknown_type" in result.output and "W503" in result.output
    doc = next(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [("Flu", "Disease", "D1")]


def test_convert_iob_and_unknown_format(tmp_path):
    src = tmp_path / "c.tsv"
    src.write_text("Flu\tI-Disease\nhurts\tO\n", encoding="utf8")
    out = tmp_path / "c.spacy"
    result = runner.invoke(app, ["convert", str(src), "-o", str(out)])
    assert result.exit_code == 0 and "invalid_tag_sequence" in result.output
    bad = tmp_path / "c.xml"
    bad.write_text("<x/>", encoding="utf8")
    with pytest.raises(ValueError, match="E507"):
        runner.invoke(app, ["convert", str(bad), "-o", str(out)], catch_exceptions=False)
