"""sapel_vocab_tagger: BILUO tags of vocabulary names (longest match, case-insensitive),
deterministic, saved with the pipeline, all O without names; its loaders; and the
sapel.VocabFeatureTok2Vec.v1 layer that feeds the tags to the ner."""
from __future__ import annotations

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.util import registry
from thinc.api import Model

from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import VocabTagger
from spacy_sapel.pipeline.vocab_tagger import VOCAB_TAGS

NAMES = ["heart attack", "Heart", "chronic kidney disease", "kidney", "flu", "  "]
TEXT = "A heart attack, HEART failure and Chronic Kidney Disease or kidney stones; flu."


def tagger_nlp(names=NAMES) -> spacy.Language:
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("sapel_vocab_tagger")
    tagger.initialize(names_loader=lambda: names)
    return nlp


def tagged(doc: Doc):
    return [(t.text, t._.sapel_vocab_tag) for t in doc if t._.sapel_vocab_tag != "O"]


def test_longest_match_case_insensitive_biluo():
    doc = tagger_nlp()(TEXT)
    assert tagged(doc) == [
        ("heart", "B"), ("attack", "L"),  # the longer name wins over "heart"
        ("HEART", "U"),
        ("Chronic", "B"), ("Kidney", "I"), ("Disease", "L"),
        ("kidney", "U"),
        ("flu", "U"),
    ]
    assert len(doc._.sapel_vocab_tags) == len(doc)


def test_tags_do_not_depend_on_the_order_or_repetition_of_names():
    a = tagger_nlp(NAMES)(TEXT)._.sapel_vocab_tags
    b = tagger_nlp(list(reversed(NAMES)) + NAMES)(TEXT)._.sapel_vocab_tags
    assert a == b


def test_without_names_every_tag_is_o():
    nlp = spacy.blank("en")
    assert isinstance(nlp.add_pipe("sapel_vocab_tagger"), VocabTagger)
    nlp.initialize()
    doc = nlp(TEXT)
    assert set(doc._.sapel_vocab_tags) == {"O"}
    # a doc no tagger saw reads as all O too
    assert {t._.sapel_vocab_tag for t in spacy.blank("en")("a heart")} == {"O"}


def test_tags_survive_docbin_with_user_data():
    nlp = tagger_nlp()
    doc = nlp(TEXT)
    (back,) = DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab)
    assert list(back._.sapel_vocab_tags) == doc._.sapel_vocab_tags  # msgpack gives a tuple


def test_names_are_saved_with_the_pipeline(tmp_path):
    nlp = tagger_nlp()
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded(TEXT)._.sapel_vocab_tags == nlp(TEXT)._.sapel_vocab_tags
    assert set(nlp(TEXT)._.sapel_vocab_tags) != {"O"}
    other = spacy.blank("en").add_pipe("sapel_vocab_tagger")
    other.from_bytes(nlp.get_pipe("sapel_vocab_tagger").to_bytes())
    assert other.phrases == nlp.get_pipe("sapel_vocab_tagger").phrases


def test_pipe_equals_call():
    nlp = tagger_nlp()
    texts = [TEXT, "", "flu flu", "nothing here"]
    assert [d._.sapel_vocab_tags for d in nlp.pipe(texts, batch_size=2)] == [
        nlp(t)._.sapel_vocab_tags for t in texts
    ]


@pytest.mark.parametrize("names", ["heart attack", ["flu", 3]])
def test_names_that_are_not_strings_are_refused(names):
    tagger = spacy.blank("en").add_pipe("sapel_vocab_tagger")
    with pytest.raises(ValueError, match="E341"):
        tagger.set_names(names)


def test_names_loader_must_be_callable():
    tagger = spacy.blank("en").add_pipe("sapel_vocab_tagger")
    with pytest.raises(ValueError, match="E340"):
        tagger.initialize(names_loader=["flu"])


@pytest.mark.parametrize("data", [b"\x93\x01\x02\x03", b"\xc1 not msgpack", b""])
def test_corrupt_phrase_file_is_a_clear_error(tmp_path, data):
    nlp = tagger_nlp()
    nlp.to_disk(tmp_path / "p")
    (tmp_path / "p" / "sapel_vocab_tagger" / "phrases").write_bytes(data)
    with pytest.raises(ValueError, match="E342.*phrases"):
        spacy.load(tmp_path / "p")


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory):
    kb = KnowledgeBase.from_concepts(
        [
            Concept("D1", "influenza", aliases=["flu"], types=["Disease"]),
            Concept("X1", "aspirin", types=["Chemical"]),
        ],
        name="toy",
    )
    path = tmp_path_factory.mktemp("vocab") / "kb_dir"
    kb.to_disk(path / "kb")  # as build-kb writes it (encoder/ and index/ are not read)
    return path


@pytest.mark.parametrize("sub", ["", "kb"])
def test_kb_dir_loader_reads_the_names_with_a_type_filter(kb_dir, sub):
    load_all = registry.misc.get("sapel.vocab_names_from_kb_dir.v1")(kb_dir / sub)
    assert sorted(load_all()) == ["aspirin", "flu", "influenza"]
    load_diseases = registry.misc.get("sapel.vocab_names_from_kb_dir.v1")(kb_dir / sub, types=["Disease"])
    assert sorted(load_diseases()) == ["flu", "influenza"]


def test_kb_dir_loader_names_a_missing_directory(tmp_path):
    load = registry.misc.get("sapel.vocab_names_from_kb_dir.v1")(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"E343.*nowhere"):
        load()


def test_reader_loader_reads_a_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("D1\tinfluenza\nD1\tflu\nD2\tasthma\n", encoding="utf8")
    load = registry.misc.get("sapel.vocab_names_from_reader.v1")(str(path), "nemo_index")
    assert sorted(load()) == ["asthma", "flu", "influenza"]


# --- the feature layer ----------------------------------------------------------------
class FixedTok2Vec:
    """A tok2vec of known output: each token's vector is (token index, 1)."""

    @staticmethod
    def build() -> Model:
        def forward(model, docs, is_train):
            out = [model.ops.asarray2f([[i, 1.0] for i in range(len(d))]) for d in docs]
            return out, lambda d_out: []

        return Model("fixed", forward, dims={"nO": 2})


def feature_layer(width: int = 3) -> Model:
    make = registry.architectures.get("sapel.VocabFeatureTok2Vec.v1")
    return make(FixedTok2Vec.build(), width=width)


def test_feature_layer_concatenates_the_tag_embedding_deterministically():
    nlp = tagger_nlp()
    docs = [nlp(TEXT), nlp("flu"), nlp.make_doc("heart attack")]  # the last not tagged
    model = feature_layer()
    model.initialize(X=docs)
    assert model.get_dim("nO") == 5
    out = model.predict(docs)
    assert [o.shape for o in out] == [(len(d), 5) for d in docs]
    again = model.predict(docs)
    assert all(numpy.array_equal(a, b) for a, b in zip(out, again))
    # the first columns are the tok2vec's, the rest the embedding of the token's tag
    embed = model.layers[1]
    table = embed.get_param("E")
    for doc, o in zip(docs, out):
        assert numpy.array_equal(o[:, 0], numpy.arange(len(doc)))
        for token, row in zip(doc, o):
            assert numpy.allclose(row[2:], table[VOCAB_TAGS.index(token._.sapel_vocab_tag)])
    # an untagged doc reads as all O
    assert numpy.allclose(out[2][:, 2:], table[0])


def test_feature_layer_backprop_reaches_the_embedding():
    nlp = tagger_nlp()
    docs = [nlp(TEXT)]
    model = feature_layer()
    model.initialize(X=docs)
    out, backprop = model.begin_update(docs)
    backprop([model.ops.alloc2f(*o.shape) + 1.0 for o in out])
    grads = model.layers[1].get_grad("E")
    used = {VOCAB_TAGS.index(t) for t in docs[0]._.sapel_vocab_tags}
    assert all(grads[i].any() == (i in used) for i in range(len(VOCAB_TAGS)))


def test_retokenized_doc_is_a_clear_error():
    nlp = tagger_nlp()
    doc = nlp(TEXT)
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[1:3])
    model = feature_layer()
    with pytest.raises(ValueError, match="E344"):
        model.initialize(X=[doc])
        model.predict([doc])


def test_bad_width_is_refused():
    with pytest.raises(ValueError, match="E702.*width"):
        feature_layer(width=0)
