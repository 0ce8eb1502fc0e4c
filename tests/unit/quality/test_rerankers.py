"""The learned reranker: features that can be switched off, k-fold training without
leakage, determinism, serialization inside the pipeline, refusal for another KB."""
from __future__ import annotations

from types import SimpleNamespace

import numpy
import srsly
import pytest
import spacy
from sapel_test_utils import doc_with_ents, linker_nlp
from spacy.tokens import Span

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.pipeline import LinkerKB
from spacy_sapel.pipeline.rerankers import FEATURES, LinearReranker, _MentionMemory
from spacy_sapel.training.reranker_training import _vocabulary_concepts, train_reranker

CONCEPTS = [
    Concept("D1", "muscular dystrophy", aliases=["MD"], types=["Disease"]),
    Concept("OMIM:2", "muscular dystrophy type 2", aliases=["MD"], types=["Disease"]),
    Concept("D3", "myotonic dystrophy", types=["Disease"], definition="An inherited muscle wasting disease."),
    Concept("D4", "asthma", aliases=["bronchial asthma"], types=["Disease"]),
    Concept("D5", "hay fever", aliases=["allergic rhinitis"], types=["Disease"]),
]
# (text, [(mention, concept id)]): "MD" is the numbered type in these abstracts
TRAIN = [
    ("MD was found in the family; MD type 2 carriers.", [("MD", "OMIM:2")]),
    ("Patients with MD and asthma.", [("MD", "OMIM:2"), ("asthma", "D4")]),
    ("Allergic rhinitis and bronchial asthma.", [("Allergic rhinitis", "D5"), ("bronchial asthma", "D4")]),
    ("Myotonic dystrophy is inherited.", [("Myotonic dystrophy", "D3")]),
    ("A family with MD.", [("MD", "OMIM:2")]),
    ("hay fever in spring", [("hay fever", "D5")]),
]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return SapEncoder.from_pretrained(tiny_bert_dir, pooling="cls", device="cpu")


@pytest.fixture(scope="module")
def linker_kb(encoder):
    kb = KnowledgeBase.from_concepts(CONCEPTS, name="rerank")
    kb.add_aliases("D5", ["seasonal rhinitis"], source="train")
    kb.add_priors([(m, c) for _, ms in TRAIN for m, c in ms], source="train")
    return LinkerKB.build(kb, encoder)


def train_docs():
    nlp = spacy.blank("en")
    docs = []
    for text, mentions in TRAIN:
        doc = doc_with_ents(nlp, text, [(m, "Disease") for m, _ in mentions])
        doc.ents = [Span(doc, e.start, e.end, label=e.label_, kb_id=c) for e, (_, c) in zip(doc.ents, mentions)]
        docs.append(doc)
    return docs


def trained(linker_kb, **options):
    model = LinearReranker(**options)
    report = train_reranker(model, linker_kb, train_docs(), linker_config={"top_k": 3}, folds=2)
    return model, report


def test_training_is_deterministic_and_reported(linker_kb):
    a, report = trained(linker_kb)
    b, _ = trained(linker_kb)
    assert a.is_trained and numpy.array_equal(a.weights, b.weights)
    assert report["mentions"] == 8 and report["examples"] > 0
    assert a.meta["encoder"] == linker_kb.encoder.fingerprint


def test_fold_kbs_hold_the_vocabulary_names_only(linker_kb):
    names = {c.concept_id: c.names() for c in _vocabulary_concepts(linker_kb.kb)}
    assert names["D5"] == ["hay fever", "allergic rhinitis"]  # no "seasonal rhinitis"


def reranker_args(linker_kb, text, mention, top_k=3):
    """What the linker hands its reranker for ``mention`` in ``text``."""
    nlp = linker_nlp(linker_kb, top_k=top_k)
    captured = {}

    def spy(lkb, doc, mentions, pools):
        captured["args"] = (lkb, doc, mentions, pools)
        return pools

    nlp.get_pipe("sapel_linker").reranker = spy
    nlp(doc_with_ents(nlp, text, [(mention, "Disease")]))
    return captured["args"]


def test_features_can_be_switched_off(linker_kb):
    args = reranker_args(linker_kb, "Patients with MD.", "MD")
    full = LinearReranker().featurize(*args)[0]
    two = LinearReranker(features=["score", "mention_prior"]).featurize(*args)[0]
    assert full.shape[1] == len(FEATURES) and two.shape[1] == 2
    assert numpy.array_equal(two, full[:, [FEATURES.index("score"), FEATURES.index("mention_prior")]])
    with pytest.raises(ValueError, match="E354.*colour"):
        LinearReranker(features=["score", "colour"])


def test_an_untrained_reranker_keeps_todays_order(linker_kb):
    text, mentions = "Patients with MD and hay fever.", [("MD", "Disease"), ("hay fever", "Disease")]
    plain = linker_nlp(linker_kb, top_k=3)
    with_model = linker_nlp(linker_kb, top_k=3, reranker={"@misc": "sapel.linear_reranker.v1"})
    a = plain(doc_with_ents(plain, text, mentions))
    b = with_model(doc_with_ents(with_model, text, mentions))
    assert [e._.kb_candidates for e in a.ents] == [e._.kb_candidates for e in b.ents]


def test_trained_reranker_is_saved_with_the_pipeline(linker_kb, tmp_path):
    model, _ = trained(linker_kb, features=["score", "mention_prior", "concept_prior", "context"])
    config = {"@misc": "sapel.linear_reranker.v1", "features": model.features}
    nlp = linker_nlp(linker_kb, top_k=3, reranker=config)
    nlp.get_pipe("sapel_linker").reranker.from_bytes(model.to_bytes())
    text, mentions = "Patients with MD and hay fever.", [("MD", "Disease"), ("hay fever", "Disease")]
    before = nlp(doc_with_ents(nlp, text, mentions))
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    reranker = loaded.get_pipe("sapel_linker").reranker
    assert numpy.array_equal(reranker.weights, model.weights)
    after = loaded(doc_with_ents(loaded, text, mentions))
    assert [e._.kb_candidates for e in after.ents] == [e._.kb_candidates for e in before.ents]
    copy = linker_nlp(linker_kb, top_k=3, reranker=config)
    copy.get_pipe("sapel_linker").from_bytes(nlp.get_pipe("sapel_linker").to_bytes())
    assert numpy.array_equal(copy.get_pipe("sapel_linker").reranker.weights, model.weights)


def test_a_reranker_for_another_kb_is_refused(linker_kb, encoder, tmp_path):
    model, _ = trained(linker_kb)
    other = LinkerKB.build(KnowledgeBase.from_concepts(CONCEPTS[:3], name="other"), encoder)
    nlp = linker_nlp(other, top_k=3, reranker={"@misc": "sapel.linear_reranker.v1"})
    linker = nlp.get_pipe("sapel_linker")
    linker.reranker.from_bytes(model.to_bytes())
    with pytest.raises(ValueError, match="E352.*'rerank'.*'other'"):
        linker.set_kb(lambda: other)


def test_a_corrupt_reranker_file(linker_kb, tmp_path):
    model, _ = trained(linker_kb)
    model.to_disk(tmp_path / "r")
    with pytest.raises(ValueError, match="E353.*features"):
        LinearReranker(features=["score"]).from_disk(tmp_path / "r")


def test_a_concepts_names_are_read_a_fixed_number_of_times(monkeypatch):
    # the per-concept features once asked for each name's kind separately, and each
    # ask re-derived all the concept's names: quadratic in a concept's name count
    many = KnowledgeBase.from_concepts(
        [Concept("D9", "muscular dystrophy", aliases=[f"dystrophy variant {i}" for i in range(40)])], name="many"
    )
    calls = []
    original = Concept.names
    monkeypatch.setattr(Concept, "names", lambda self: calls.append(1) or original(self))
    LinearReranker()._concept(many, "D9")
    assert 1 <= len(calls) <= 2


def _featurize(linker_kb, text, mention):
    lkb, doc, mentions, pools = reranker_args(linker_kb, text, mention, top_k=5)
    x = LinearReranker().featurize(lkb, doc, mentions, pools)[0]
    return {cid: dict(zip(FEATURES, row)) for (cid, _), row in zip(pools[0], x)}


def test_lexical_features_compare_the_mention_with_the_canonical_name(linker_kb):
    rows = _featurize(linker_kb, "Patients with muscular dystrophies.", "muscular dystrophies")
    general, typed, other = rows["D1"], rows["OMIM:2"], rows["D3"]
    # plural undone: {muscular, dystrophy} is the whole canonical name of D1
    assert general["canonical_overlap"] == 1.0 and general["canonical_in_mention"] == 1.0
    # "muscular dystrophy type 2": the mention is inside it, a third of it is not
    assert typed["mention_in_canonical"] == 1.0
    assert typed["canonical_overlap"] == pytest.approx(2 / 3)
    assert typed["canonical_in_mention"] == pytest.approx(2 / 3)
    # "myotonic dystrophy" shares one word of three
    assert other["canonical_overlap"] == pytest.approx(1 / 3)
    assert general["name_overlap"] == 1.0 > other["name_overlap"]
    assert 1.0 > general["char_similarity"] > other["char_similarity"] > 0.0


def test_a_reranker_saved_with_fewer_features_loads_without_a_feature_list(linker_kb):
    """A model trained on an older feature list (before features were added) loads
    into a reranker configured without ``features`` and scores as before; with an
    explicit list that differs it is refused (E353)."""
    old = list(FEATURES[:17])
    model, _ = trained(linker_kb, features=old)
    loaded = LinearReranker().from_bytes(model.to_bytes())
    assert loaded.features == old and numpy.array_equal(loaded.weights, model.weights)
    x = numpy.random.default_rng(0).normal(size=(3, len(old)))
    assert numpy.allclose(loaded.score(x), model.score(x))
    with pytest.raises(ValueError, match="E353.*features"):
        LinearReranker(features=list(FEATURES)).from_bytes(model.to_bytes())
    with pytest.raises(ValueError, match="E353"):
        LinearReranker().from_bytes(srsly.msgpack_dumps({**srsly.msgpack_loads(model.to_bytes()), "weights": [1.0]}))
    assert LinearReranker().features == list(FEATURES)


class _FixedEncoder:
    """Unit vectors chosen by the test, and a record of what was encoded."""

    fingerprint = "fixed"

    def __init__(self, vectors):
        self.vectors = vectors
        self.calls = []

    def encode(self, texts, **_):
        self.calls.append(list(texts))
        return numpy.array([self.vectors[t] for t in texts], dtype=numpy.float32)


def _votes(memory, queries, k):
    """The votes of a mention whose strings (itself, its long form) have ``queries``
    vectors: each labelled string's best similarity to any of them."""
    return memory.vote(numpy.max(memory.vectors @ numpy.stack(queries).T, axis=1), k)


def _memory_kb(counts, vectors):
    kb = KnowledgeBase.from_concepts([Concept(c, f"name {c}") for c in ("X", "Y", "Z")], name="memory")
    kb.add_priors([(text, cid) for text, per in counts.items() for cid, n in per.items() for _ in range(n)], source="t")
    return SimpleNamespace(kb=kb, encoder=_FixedEncoder(vectors))


def test_similar_mentions_weigh_the_k_nearest_labelled_mentions_by_similarity():
    """A string annotated n times is n labelled mentions; the k nearest are taken in
    order of cosine similarity (at least 0), ties in the order of the priors, and each
    concept gets its similarity-weighted share. With a long form, a labelled mention's
    similarity is the better of the two."""
    counts = {"a": {"X": 3}, "b": {"Y": 1, "Z": 1}, "c": {"Y": 5}, "d": {"Z": 1}}
    vectors = {"a": [1, 0], "b": [0.8, 0.6], "c": [0, 1], "d": [-1, 0]}
    memory = _MentionMemory.build(_memory_kb(counts, vectors))
    q, long_form = numpy.array([1.0, 0.0]), numpy.array([0.0, 1.0])
    # the exact string alone: its own prior
    assert _votes(memory, [q], 2) == {"X": 1.0}
    # "a" three times (weight 1 each), then one of "b"'s two (0.8, split between Y and Z)
    votes = _votes(memory, [q], 4)
    assert votes == pytest.approx({"X": 3 / 3.8, "Y": 0.4 / 3.8, "Z": 0.4 / 3.8})
    # all of "a" and "b"; "c" is orthogonal (weight 0) and "d" is never reached
    assert _votes(memory, [q], 10) == pytest.approx({"X": 3 / 4.6, "Y": 0.8 / 4.6, "Z": 0.8 / 4.6})
    # with the long form "c" ties with "a" at 1.0 and comes after it
    assert _votes(memory, [q, long_form], 4) == pytest.approx({"X": 0.75, "Y": 0.25})
    # nothing similar at all: no votes rather than a division by zero
    assert _votes(memory, [numpy.array([0.0, -1.0])], 1) == {}


def test_similar_mentions_follow_the_kb_and_cost_nothing_when_switched_off(linker_kb):
    args = reranker_args(linker_kb, "Patients with MD.", "MD")
    calls = []
    encode = linker_kb.encoder.encode
    linker_kb.encoder.encode = lambda texts, **kw: calls.append(list(texts)) or encode(texts, **kw)
    try:
        off = LinearReranker(features=[f for f in FEATURES if f != "similar_mentions"])
        off.featurize(*args)
        assert calls == [] and off._memory is None
        on = LinearReranker()
        x = on.featurize(*args)[0]
        # the KB's labelled strings once, then the mention's
        assert sorted(calls[0]) == sorted(linker_kb.kb.priors.mention_counts) and calls[1] == ["md"]
        assert numpy.array_equal(on.featurize(*args)[0], x)
        assert len(calls) == 2  # neither the KB's strings nor the mention's again
    finally:
        linker_kb.encoder.encode = encode
    column = dict(zip((cid for cid, _ in args[3][0]), x[:, FEATURES.index("similar_mentions")]))
    # "MD" was annotated with OMIM:2 three times: the nearest labelled mentions
    assert column["OMIM:2"] == max(column.values()) > 0
    # another KB (a fold's, with other priors) gets its own labelled strings
    fold = KnowledgeBase.from_concepts(_vocabulary_concepts(linker_kb.kb), name="fold")
    fold.add_priors([("asthma", "D4")], source="fold")
    fold_kb = LinkerKB.build(fold, linker_kb.encoder)
    lkb, doc, mentions, pools = args
    x = on.featurize(fold_kb, doc, mentions, pools)[0]
    assert on._memory.strings == ["asthma"]
    assert dict(zip((cid for cid, _ in pools[0]), x[:, FEATURES.index("similar_mentions")])).get("OMIM:2") == 0.0


def test_the_linker_prepares_the_similar_mentions_of_a_batch_at_once(linker_kb, monkeypatch):
    model, _ = trained(linker_kb)
    assert "similar_mentions" in model.features
    texts = [
        ("Patients with MD.", [("MD", "Disease")]),
        ("Bronchial asthma and hay fever.", [("Bronchial asthma", "Disease"), ("hay fever", "Disease")]),
        ("A case of myotonic dystrophy.", [("myotonic dystrophy", "Disease")]),
    ]

    def link(prepare):
        nlp = linker_nlp(linker_kb, top_k=3, reranker={"@misc": "sapel.linear_reranker.v1"})
        reranker = nlp.get_pipe("sapel_linker").reranker
        reranker.from_bytes(model.to_bytes())
        if not prepare:
            reranker.prepare = lambda *args: None
        calls = []
        encode = linker_kb.encoder.encode
        linker_kb.encoder.encode = lambda t, **kw: calls.append(list(t)) or encode(t, **kw)
        try:
            docs = list(nlp.pipe([doc_with_ents(nlp, t, m) for t, m in texts], batch_size=3))
        finally:
            linker_kb.encoder.encode = encode
        return [e._.kb_candidates for d in docs for e in d.ents], calls

    embedded = []
    collate = linker_kb.encoder._collate
    monkeypatch.setattr(linker_kb.encoder, "_collate", lambda ids: embedded.extend(ids) or collate(ids))
    batched, calls = link(True)
    monkeypatch.undo()
    # the linker's search, then the batch's four mentions together (the KB's labelled
    # strings came encoded with the trained model) ...
    assert [sorted(c) for c in calls[1:]] == [["bronchial asthma", "hay fever", "md", "myotonic dystrophy"]]
    # ... whose vectors the search had already computed (the tokenizer lowercases)
    assert len(embedded) == 4
    one_by_one, calls = link(False)
    assert len(calls) == 1 + len(texts) and one_by_one == batched


def _count_encodes(linker_kb):
    calls = []
    encode = linker_kb.encoder.encode

    def spy(texts, **kw):
        calls.append(list(texts))
        return encode(texts, **kw)

    return calls, spy, encode


def test_the_encoded_labelled_mentions_are_saved_with_the_reranker(linker_kb, tmp_path):
    """Training encodes the target KB's labelled strings and saves them with the
    weights: a loaded pipeline links as before without encoding them again. Other
    priors (or another encoder) are encoded afresh."""
    model, _ = trained(linker_kb)
    strings = sorted(linker_kb.kb.priors.mention_counts)
    config = {"@misc": "sapel.linear_reranker.v1"}
    nlp = linker_nlp(linker_kb, top_k=3, reranker=config)
    nlp.get_pipe("sapel_linker").reranker.from_bytes(model.to_bytes())
    text, mentions = "Patients with MD and hay fever.", [("MD", "Disease"), ("hay fever", "Disease")]
    calls, spy, encode = _count_encodes(linker_kb)
    linker_kb.encoder.encode = spy
    try:
        before = nlp(doc_with_ents(nlp, text, mentions))
        assert all(sorted(c) != strings for c in calls)  # from bytes: not encoded again
    finally:
        linker_kb.encoder.encode = encode
    nlp.to_disk(tmp_path / "nlp")
    assert (tmp_path / "nlp" / "sapel_linker" / "reranker" / "mentions.npy").exists()
    loaded = spacy.load(tmp_path / "nlp")
    lkb = loaded.get_pipe("sapel_linker").linker_kb
    calls, spy, encode = _count_encodes(lkb)
    lkb.encoder.encode = spy
    after = loaded(doc_with_ents(loaded, text, mentions))
    assert calls == [["MD", "hay fever"], ["md", "hay fever"]]  # search, votes
    assert [e._.kb_candidates for e in after.ents] == [e._.kb_candidates for e in before.ents]
    # the same KB with one more labelled mention: its strings are encoded again
    lkb.kb.add_priors([("muscular dystrophy", "D1")], source="more")
    calls.clear()
    again = loaded(doc_with_ents(loaded, text, mentions))
    assert [sorted(c) for c in calls] == [sorted(lkb.kb.priors.mention_counts), ["hay fever", "md"]]
    assert again.ents[0]._.kb_candidates  # still linked


def test_a_reranker_whose_saved_mentions_do_not_fit_is_refused(linker_kb, tmp_path):
    model, _ = trained(linker_kb)
    model.to_disk(tmp_path / "r")
    vectors = numpy.load(tmp_path / "r" / "mentions.npy")
    numpy.save(tmp_path / "r" / "mentions.npy", vectors[:-1])
    with pytest.raises(ValueError, match="E353.*strings but vectors of"):
        LinearReranker().from_disk(tmp_path / "r")
    (tmp_path / "r" / "mentions.npy").unlink()
    with pytest.raises(ValueError, match="E353.*mentions.npy.*missing"):
        LinearReranker().from_disk(tmp_path / "r")
    state = srsly.msgpack_loads(model.to_bytes())
    assert LinearReranker().from_bytes(srsly.msgpack_dumps(state))._saved_memory.strings == state["memory"]["strings"]
    for wrong in (state["memory"]["vectors"][:-1], state["memory"]["vectors"].ravel(), [[0.0]]):
        bad = {**state, "memory": {**state["memory"], "vectors": wrong}}
        with pytest.raises(ValueError, match="E353.*strings but vectors of"):
            LinearReranker().from_bytes(srsly.msgpack_dumps(bad))


def test_similar_mentions_are_the_same_whatever_the_slices_of_the_product(monkeypatch):
    """The batch's strings meet the labelled ones in slices bounded by
    ``_SIMILARITY_CELLS``; one string per slice gives the votes of one product, and
    those of :meth:`_MentionMemory.votes` for each mention alone."""
    from spacy_sapel.pipeline import rerankers

    counts = {"a": {"X": 3}, "b": {"Y": 1, "Z": 1}, "c": {"Y": 5}, "d": {"Z": 1}}
    vectors = {"a": [1, 0], "b": [0.8, 0.6], "c": [0, 1], "d": [-1, 0], "q": [0.6, 0.8]}
    linker_kb = _memory_kb(counts, vectors)
    mentions = [
        SimpleNamespace(text="a", long_text=None),
        SimpleNamespace(text="q", long_text=None),
        SimpleNamespace(text="b", long_text="c"),
        SimpleNamespace(text="A", long_text="a"),  # one key: ("a",)
    ]
    monkeypatch.setattr(rerankers, "SIMILAR_MENTIONS_K", 4)
    whole = LinearReranker()._similar_mentions(linker_kb, mentions)
    monkeypatch.setattr(rerankers, "_SIMILARITY_CELLS", 1)
    sliced = LinearReranker()._similar_mentions(linker_kb, mentions)
    # a bound of 8 cells against the 4 labelled strings allows 2 batch strings per
    # product, also when every mention brings a long form
    pairs = [SimpleNamespace(text="b", long_text="c"), SimpleNamespace(text="q", long_text="d")]
    monkeypatch.setattr(rerankers, "_SIMILARITY_CELLS", 1)
    one_by_one = LinearReranker()._similar_mentions(linker_kb, pairs)
    monkeypatch.setattr(rerankers, "_SIMILARITY_CELLS", 8)
    linker_kb.encoder.calls.clear()
    bounded = LinearReranker()._similar_mentions(linker_kb, pairs)
    products = linker_kb.encoder.calls[1:]  # after the labelled strings
    assert products and all(len(texts) * len(counts) <= 8 for texts in products)
    assert bounded == one_by_one
    memory = _MentionMemory.build(linker_kb)
    q = {t: numpy.array(v, dtype=numpy.float32) for t, v in vectors.items()}
    alone = [_votes(memory, [q["a"]], 4), _votes(memory, [q["q"]], 4), _votes(memory, [q["b"], q["c"]], 4), _votes(memory, [q["a"]], 4)]
    assert whole == sliced
    assert [w.keys() for w in whole] == [a.keys() for a in alone]
    assert all(w[k] == pytest.approx(a[k]) for w, a in zip(whole, alone) for k in w)
    assert whole[0] == pytest.approx({"X": 3 / 3.8, "Y": 0.4 / 3.8, "Z": 0.4 / 3.8}) and whole[3] == whole[0]


def test_similar_mentions_survive_the_store_being_cleared(monkeypatch):
    """Past ``_VOTES_KEPT`` the kept votes are cleared before a batch, never while
    its mentions still need them (a mention seen before beside a new one)."""
    from spacy_sapel.pipeline import rerankers

    counts = {"a": {"X": 3}, "b": {"Y": 1, "Z": 1}}
    vectors = {"a": [1, 0], "b": [0.8, 0.6], "q": [0.6, 0.8]}
    linker_kb = _memory_kb(counts, vectors)
    a, b, q = (SimpleNamespace(text=t, long_text=None) for t in "abq")
    expected = LinearReranker()._similar_mentions(linker_kb, [a, b, q])
    monkeypatch.setattr(rerankers, "_VOTES_KEPT", 1)
    reranker = LinearReranker()
    reranker._similar_mentions(linker_kb, [a, b])
    for got, want in ((reranker._similar_mentions(linker_kb, [a, q]), [expected[0], expected[2]]),
                      (reranker._similar_mentions(linker_kb, [b]), [expected[1]])):
        assert [g.keys() for g in got] == [w.keys() for w in want]
        assert all(g == pytest.approx(w) for g, w in zip(got, want))
    assert len(reranker._votes) <= 2


def test_identical_documents_share_a_fold(linker_kb):
    """A document given twice (a corpus passed with another that holds it too) is in
    one fold: its copy in another fold would show it its own mentions as priors."""
    seen = []

    class Spy(LinearReranker):
        def featurize(self, lkb, doc, mentions, pools):
            rows = super().featurize(lkb, doc, mentions, pools)
            seen.extend((m.text, float(x[0, 0])) for m, x in zip(mentions, rows))
            return rows

    nlp = spacy.blank("en")

    def wheezing():
        doc = doc_with_ents(nlp, "Wheezing attacks in the night.", [("Wheezing attacks", "Disease")])
        doc.ents = [Span(doc, e.start, e.end, label=e.label_, kb_id="D4") for e in doc.ents]
        return doc

    docs = [wheezing(), wheezing(), *train_docs()]
    train_reranker(Spy(features=["string_seen"]), linker_kb, docs, linker_config={"top_k": 3}, folds=2)
    assert [value for text, value in seen if text == "Wheezing attacks"] == [0.0, 0.0]
    # a string another document annotates is seen: "MD" of the other fold's abstracts
    assert any(value > 0 for text, value in seen if text == "MD")
