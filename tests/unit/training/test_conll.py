"""Token-per-line IOB and CoNLL-2003 files -> docs with entities, and bad input."""
from __future__ import annotations

import pytest
import spacy
from spacy.util import registry

from spacy_sapel.training import CorpusReport, read_iob_docs

IOB = (
    "Aspirin\tB-Chemical\ncauses\tO\nacute\tB-Disease\nrenal\tI-Disease\nfailure\tI-Disease\n.\tO\n\n"
    "No\tO\nheadache\tB-Disease\n.\tO\n\n"
    "Third\tO\nsentence\tO\n"
)
CONLL = (
    "-DOCSTART- -X- -X- O\n\n"
    "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n\n"
    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n"
    "-DOCSTART- -X- -X- O\n\n"
    "BRUSSELS NNP B-NP B-LOC\n1996-08-22 CD I-NP O\n"
)


@pytest.fixture
def vocab():
    return spacy.blank("en").vocab


def write(tmp_path, text, name="corpus.tsv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def test_tab_iob_groups_sentences(tmp_path, vocab):
    docs = list(read_iob_docs(vocab, write(tmp_path, IOB), n_sents=2))
    assert len(docs) == 2
    assert ents(docs[0]) == [("Aspirin", "Chemical"), ("acute renal failure", "Disease"), ("headache", "Disease")]
    assert [s.text for s in docs[0].sents] == ["Aspirin causes acute renal failure .", "No headache ."]
    assert ents(docs[1]) == []
    assert len(list(read_iob_docs(vocab, write(tmp_path, IOB), n_sents=0))) == 1


def test_conll2003_docstart_splits_documents(tmp_path, vocab):
    docs = list(read_iob_docs(vocab, write(tmp_path, CONLL, "train.txt")))
    assert len(docs) == 2
    assert ents(docs[0]) == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER")]
    assert ents(docs[1]) == [("BRUSSELS", "LOC")]
    assert not any(t.text == "-DOCSTART-" for d in docs for t in d)


def test_i_without_b_is_counted_and_fixed(tmp_path, vocab):
    text = "a\tO\nbad\tI-Disease\nstart\tI-Disease\nthen\tB-Chemical\nswitch\tI-Disease\n"
    with pytest.warns(UserWarning, match=r"W505.*2 tag sequence"):
        docs = list(read_iob_docs(vocab, write(tmp_path, text)))
    assert ents(docs[0]) == [("bad start", "Disease"), ("then", "Chemical"), ("switch", "Disease")]


def test_i_without_b_error_policy(tmp_path, vocab):
    path = write(tmp_path, "a\tO\nbad\tI-Disease\n")
    with pytest.raises(ValueError, match=r"E503.*line 2.*I-Disease"):
        list(read_iob_docs(vocab, path, invalid_tags="error"))
    with pytest.raises(ValueError, match="E506"):
        list(read_iob_docs(vocab, path, invalid_tags="ignore"))


def test_i_tag_does_not_continue_across_sentences(tmp_path, vocab):
    report = CorpusReport()
    text = "x\tB-Disease\n\ny\tI-Disease\n"
    docs = list(read_iob_docs(vocab, write(tmp_path, text), report=report))
    assert ents(docs[0]) == [("x", "Disease"), ("y", "Disease")]
    assert report.counts == {"invalid_tag_sequence": 1}


def test_bad_input(tmp_path, vocab):
    with pytest.raises(ValueError, match=r"E502.*holds no sentences"):
        list(read_iob_docs(vocab, write(tmp_path, "\n\n", "empty.tsv")))
    with pytest.raises(ValueError, match=r"E503.*line 2.*'X-Disease'"):
        list(read_iob_docs(vocab, write(tmp_path, "a\tO\nb\tX-Disease\n")))
    with pytest.raises(ValueError, match=r"E002.*line 1.*one column"):
        list(read_iob_docs(vocab, write(tmp_path, "lonely\n")))


def test_registered_reader_yields_examples(tmp_path):
    nlp = spacy.blank("en")
    reader = registry.readers.get("sapel.iob_corpus.v1")(write(tmp_path, IOB), n_sents=10)
    examples = list(reader(nlp))
    assert len(examples) == 1
    assert ents(examples[0].reference)[0] == ("Aspirin", "Chemical")
    assert examples[0].predicted.text == examples[0].reference.text
