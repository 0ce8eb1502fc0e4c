"""`python -m spacy_sapel visualize`: a standalone displaCy page where each entity shows
its label in its colour and, as a link, its KB id and canonical name, with the runner-up
candidates in the entity's title; the page is opened in headless Chromium (skipped
without it)."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import spacy
from sapel_test_utils import linker_nlp
from typer.testing import CliRunner

from spacy_sapel.cli import app
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.describe import label_colors, render_links, url_for

runner = CliRunner()
TEXT = "She had the flu and a bad headache."
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory, tiny_bert_dir):
    concepts = [Concept("D007251", "influenza", aliases=["flu"]), Concept("D006261", "headache"),
                Concept("OMIM:123", "asthma")]
    kb = KnowledgeBase.from_concepts(concepts, name="toy")
    linker_kb = LinkerKB.build(kb, SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu"))
    nlp = linker_nlp(linker_kb, **{"top_k": 3})
    path = tmp_path_factory.mktemp("vis") / "pipeline"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory, pipeline_dir):
    tmp = tmp_path_factory.mktemp("page")
    corpus = tmp / "docs.jsonl"
    corpus.write_text(json.dumps({"text": TEXT, "ents": [
        {"start": 12, "end": 15, "label": "DISEASE"}, {"start": 26, "end": 34, "label": "DISEASE"}]}) + "\n")
    out = tmp / "links.html"
    result = runner.invoke(app, ["visualize", str(pipeline_dir), str(corpus), "--gold-ents", "-o", str(out),
                                 "--kb-url", "toy=https://example.org/concept/{}"])
    assert result.exit_code == 0, result.output
    return out


class Marks(HTMLParser):
    """The attributes of each <mark> and of the links inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list = []

    def handle_starttag(self, tag, attrs):
        if tag == "mark":
            self.marks.append({"mark": dict(attrs), "links": []})
        elif tag == "a" and self.marks:
            self.marks[-1]["links"].append(dict(attrs))


def test_page_links_each_entity_with_id_name_and_runner_ups(page):
    text = page.read_text(encoding="utf8")
    assert text.startswith("<!DOCTYPE html>")
    assert "D007251 influenza" in text and "D006261 headache" in text
    parser = Marks()
    parser.feed(text)
    flu, headache = parser.marks
    # the link is a plain href; the hover text is the entity's own title attribute
    assert flu["links"] == [{"style": flu["links"][0]["style"], "href": "https://example.org/concept/D007251"}]
    assert flu["mark"]["title"].startswith("D007251 influenza (score ")
    assert "runner-ups:" in flu["mark"]["title"]
    assert headache["links"][0]["href"] == "https://example.org/concept/D006261"
    # the label has its colour instead of displaCy's grey
    colour = label_colors(["DISEASE"])["DISEASE"]
    assert all(f"background: {colour}" in m["mark"]["style"] for m in parser.marks)


def test_hover_text_of_a_nil_entity_gives_its_best_candidates(pipeline_dir):
    nlp = spacy.load(pipeline_dir)
    nlp.get_pipe("sapel_linker").cfg["threshold"] = 1.0
    doc = nlp.make_doc('a "bad" <flu>')
    doc.ents = [doc.char_span(2, 13, label="DISEASE")]
    parser = Marks()
    parser.feed(render_links(nlp, [nlp(doc)]))
    (mark,) = parser.marks
    assert mark["links"] == []
    assert mark["mark"]["title"].startswith("NIL: no candidate reached the threshold | best: ")


def test_url_templates_per_kb_and_id_prefix():
    assert url_for("D1") == "https://meshb.nlm.nih.gov/record/ui?ui=D1"
    assert url_for("OMIM:123") == "https://omim.org/entry/123"
    assert url_for("C0001", kb_name="umls", url_templates={"umls": "https://u/{}"}) == "https://u/C0001"


def test_text_input_and_bad_template(pipeline_dir, tmp_path):
    out = tmp_path / "t.html"
    result = runner.invoke(app, ["visualize", str(pipeline_dir), "--text", "no entities here", "-o", str(out)])
    assert result.exit_code == 0 and "no entities here" in out.read_text()
    with pytest.raises(ValueError, match="E402"):
        runner.invoke(app, ["visualize", str(pipeline_dir), "--text", "x", "--kb-url", "toy=nourl"],
                      catch_exceptions=False)


def _colour_fraction(path: Path, colour: str) -> float:
    """The fraction of pixels of a (non-interlaced, 8-bit RGB/RGBA) PNG that have
    ``colour`` ("#rrggbb"), give or take 10 per channel."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 2
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, ctype = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    bpp = 4 if ctype == 6 else 3
    raw, stride, prev = zlib.decompress(idat), width * bpp, bytearray(width * bpp)
    hits = 0
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            hits += all(abs(v - c) <= 10 for v, c in zip(line[x:x + 3], rgb))
        prev = line
    return hits / max(width * height, 1)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium); "
                    "scripts/quickstart.sh test installs it when run as root on Debian")
def test_page_renders_in_headless_chromium(page, tmp_path):
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = page.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert "<mark" in dom.stdout, dom.stderr[-2000:]
    assert "flu" in dom.stdout and "D007251 influenza" in dom.stdout
    assert 'href="https://example.org/concept/D007251"' in dom.stdout
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=900,300", url],
                   capture_output=True, timeout=120)
    print(f"screenshot of the displaCy page: {shot}")  # shown with pytest -rP or -s
    assert shot.is_file() and shot.stat().st_size > 1000
    # the two entity boxes in the DISEASE colour; a blank or grey page has none
    assert _colour_fraction(shot, label_colors(["DISEASE"])["DISEASE"]) > 0.01
