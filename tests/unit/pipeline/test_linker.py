from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import shutil

import pytest
import spacy
from sapel_test_utils import doc_with_ents
from confection import ConfigValidationError
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_sapel.errors import IndexLoadError
from spacy_sapel.pipeline import LinkerKB, SapelLinker
from spacy_sapel.pipeline.loaders import create_kb_dir_loader


def make_nlp(kb_dir, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config=config)
    nlp.config["initialize"]["components"]["sapel_linker"] = {
        "kb_loader": {"@misc": "sapel.load_kb_dir.v1", "path": str(kb_dir)}
    }
    nlp.initialize()
    return nlp


def links(doc: Doc):
    return [(ent.text, ent.kb_id_, ent._.kb_candidates) for ent in doc.ents]


TEXTS = [
    ("She had a heart attack and a headache.", [("heart attack", "DISEASE"), ("headache", "DISEASE")]),
    ("CKD and flu and asthma", [("CKD", "DISEASE"), ("flu", "DISEASE"), ("asthma", "DISEASE")]),
    ("No entities here.", []),
    ("", []),
]


@pytest.fixture(scope="module")
def nlp(toy_kb_dir):
    return make_nlp(toy_kb_dir, top_k=3)


def test_links_exact_aliases_to_their_concepts(nlp):
    doc = nlp(doc_with_ents(nlp, *TEXTS[0]))
    assert [ent.kb_id_ for ent in doc.ents] == ["C2", "C1"]
    for ent in doc.ents:
        cands = ent._.kb_candidates
        assert cands[0][0] == ent.kb_id_
        assert cands[0][1] == pytest.approx(1.0, abs=1e-4)
        assert len(cands) == 3
        assert len({cid for cid, _ in cands}) == 3
        assert [s for _, s in cands] == sorted((s for _, s in cands), reverse=True)
        # the linker's kb id is on the tokens, so it survives re-reading doc.ents
        assert all(token.ent_kb_id_ == ent.kb_id_ for token in ent)


def test_kb_reachable_from_component(nlp):
    linker = nlp.get_pipe("sapel_linker")
    assert isinstance(linker, SapelLinker)
    assert linker.kb["C2"].canonical_name == "myocardial infarction"
    assert linker.kb["C2"].types == ["Disease"]


def test_empty_doc_and_doc_without_entities(nlp):
    assert list(nlp("").ents) == []
    doc = nlp("No entities at all.")
    assert list(doc.ents) == []


def test_pipe_equals_call(nlp):
    docs_a = [nlp(doc_with_ents(nlp, t, s)) for t, s in TEXTS]
    docs_b = list(nlp.pipe([doc_with_ents(nlp, t, s) for t, s in TEXTS], batch_size=3))
    for a, b in zip(docs_a, docs_b):
        la, lb = links(a), links(b)
        assert [(t, k) for t, k, _ in la] == [(t, k) for t, k, _ in lb]
        for (_, _, ca), (_, _, cb) in zip(la, lb):
            assert [c for c, _ in ca] == [c for c, _ in cb]
            assert [s for _, s in ca] == pytest.approx([s for _, s in cb], abs=1e-5)


def test_errors_go_to_the_error_handler_as_in_spacys_pipes(toy_kb_dir, monkeypatch):
    nlp = make_nlp(toy_kb_dir, top_k=2)
    linker = nlp.get_pipe("sapel_linker")
    search = linker.linker_kb.search

    def failing_search(texts, **options):
        if "CKD" in texts:
            raise RuntimeError("search failed")
        return search(texts, **options)

    monkeypatch.setattr(linker.linker_kb, "search", failing_search)
    docs = [doc_with_ents(nlp, t, s) for t, s in TEXTS[:3]]
    with pytest.raises(RuntimeError, match="search failed"):
        list(nlp.pipe(docs, batch_size=1))
    failures = []
    nlp.set_error_handler(lambda name, proc, batch, e: failures.append((name, proc, batch, e)))
    # the failing batch is left out, the others are linked
    out = list(nlp.pipe([doc_with_ents(nlp, t, s) for t, s in TEXTS[:3]], batch_size=1))
    assert [doc.text for doc in out] == [TEXTS[0][0], TEXTS[2][0]]
    assert [ent.kb_id_ for ent in out[0].ents] == ["C2", "C1"]
    ((name, proc, batch, error),) = failures
    assert name == "sapel_linker" and proc is linker
    assert [doc.text for doc in batch] == [TEXTS[1][0]]
    assert isinstance(error, RuntimeError)
    # calling the component goes through the handler too, and returns the doc unlinked
    doc = doc_with_ents(nlp, *TEXTS[1])
    assert linker(doc) is doc
    assert len(failures) == 2 and failures[1][2] == [doc]
    assert all(ent.kb_id_ == "" and ent._.kb_candidates is None for ent in doc.ents)


def test_threshold_makes_nil_but_keeps_candidates(toy_kb_dir):
    nlp = make_nlp(toy_kb_dir, top_k=2, threshold=1.0)
    doc = nlp(doc_with_ents(nlp, "a bad pain in the kidney", [("bad pain in the kidney", "DISEASE")]))
    (ent,) = doc.ents
    assert ent.kb_id_ == ""
    assert len(ent._.kb_candidates) == 2
    assert ent._.kb_candidates[0][1] < 1.0


def test_labels_restrict_what_is_linked(toy_kb_dir):
    nlp = make_nlp(toy_kb_dir, labels=["DISEASE"])
    doc = nlp(doc_with_ents(nlp, "flu and aspirin", [("flu", "DISEASE"), ("aspirin", "CHEMICAL")]))
    flu, aspirin = doc.ents
    assert flu.kb_id_ == "C5"
    assert aspirin.kb_id_ == "" and aspirin._.kb_candidates is None


@pytest.mark.parametrize(
    "mention",
    ["x", "a" * 2000, "\u200b\u0301\U0001F600 \t", "héadache\u00a0ﬁ", "中文疾病"],
    ids=["one-char", "2000-chars", "zero-width-emoji", "accents-ligature", "cjk"],
)
def test_odd_mentions_get_well_formed_candidates(nlp, mention):
    text = f"see {mention} here"
    doc = nlp.make_doc(text)
    start = text.index(mention)
    span = doc.char_span(start, start + len(mention), label="DISEASE", alignment_mode="expand")
    doc.ents = [span]
    doc = nlp(doc)
    (ent,) = doc.ents
    cands = ent._.kb_candidates
    assert 1 <= len(cands) <= 3
    assert all(isinstance(c, str) and -1.0001 <= s <= 1.0001 for c, s in cands)
    assert ent.kb_id_ == cands[0][0]


def test_uninitialized_linker_says_how_to_give_it_a_kb():
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker")
    with pytest.raises(ValueError, match=r"E300.*sapel.load_kb_dir.v1"):
        nlp.initialize()
    with pytest.raises(ValueError, match="E300"):
        nlp("text")


def test_bad_kb_loaders(toy_linker_kb):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("sapel_linker")
    with pytest.raises(ValueError, match="E307"):
        linker.set_kb("not callable")
    with pytest.raises(ValueError, match="E308"):
        linker.set_kb(lambda: "not a kb")
    linker.set_kb(lambda: toy_linker_kb)
    assert linker.kb is toy_linker_kb.kb


@pytest.mark.parametrize(
    "config",
    [{"top_k": 0}, {"top_k": 2.5}, {"batch_size": 0}, {"threshold": 1.5}, {"threshold": "high"}],
)
def test_bad_options_are_refused_naming_the_option(config):
    """Our own range checks (E702/E306) or spaCy's config validation, either way the
    message names the option and its value."""
    (option, value), = config.items()
    nlp = spacy.blank("en")
    with pytest.raises((ValueError, ConfigValidationError)) as err:
        nlp.add_pipe("sapel_linker", config=config)
    assert option in str(err.value) and repr(value).strip("'") in str(err.value)


def test_index_from_another_encoder_is_refused(toy_linker_kb, other_tiny_bert_dir):
    from spacy_sapel.encoder import SapEncoder

    other = SapEncoder.from_pretrained(other_tiny_bert_dir, pooling="cls", device="cpu")
    with pytest.raises(IndexLoadError, match="fingerprint"):
        LinkerKB(encoder=other, kb=toy_linker_kb.kb, index=toy_linker_kb.index)


def test_two_linkers_for_two_kbs(toy_kb_dir, drug_linker_kb):
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", name="disease_linker", config={"labels": ["DISEASE"]})
    nlp.add_pipe("sapel_linker", name="drug_linker", config={"labels": ["CHEMICAL"]})
    nlp.get_pipe("disease_linker").set_kb(create_kb_dir_loader(toy_kb_dir))
    nlp.get_pipe("drug_linker").set_kb(lambda: drug_linker_kb)
    doc = nlp(doc_with_ents(nlp, "flu treated with aspirin", [("flu", "DISEASE"), ("aspirin", "CHEMICAL")]))
    assert [ent.kb_id_ for ent in doc.ents] == ["C5", "X1"]
    assert {c for c, _ in doc.ents[1]._.kb_candidates} <= {"X1", "X2"}


def test_scorer_reports_nel_micro_prf(nlp):
    predicted = doc_with_ents(nlp, *TEXTS[0])
    reference = doc_with_ents(nlp, *TEXTS[0])
    reference.ents = [
        Span(reference, e.start, e.end, label=e.label_, kb_id=kb)
        for e, kb in zip(reference.ents, ["C2", "C4"])
    ]
    scores = nlp.evaluate([Example(predicted, reference)])
    assert scores["nel_micro_p"] == pytest.approx(0.5)
    assert scores["nel_micro_r"] == pytest.approx(0.5)
    assert scores["nel_micro_f"] == pytest.approx(0.5)


def test_analyze_pipes_knows_requires_and_assigns(nlp):
    analysis = nlp.analyze_pipes()
    summary = analysis["summary"]["sapel_linker"]
    assert "doc.ents" in summary["requires"]
    assert "token.ent_kb_id" in summary["assigns"]


def test_to_bytes_round_trip(nlp):
    nlp2 = spacy.blank("en")
    nlp2.add_pipe("sapel_linker", config={"top_k": 3})
    nlp2.get_pipe("sapel_linker").from_bytes(nlp.get_pipe("sapel_linker").to_bytes())
    assert nlp2.get_pipe("sapel_linker").cfg == nlp.get_pipe("sapel_linker").cfg
    a = nlp(doc_with_ents(nlp, *TEXTS[1]))
    b = nlp2(doc_with_ents(nlp2, *TEXTS[1]))
    assert links(a) == links(b)


def test_to_disk_and_spacy_load_in_a_fresh_process(nlp, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    docs = [nlp(doc_with_ents(nlp, t, s)) for t, s in TEXTS]
    expected = [[[e.text, e.kb_id_, [list(c) for c in e._.kb_candidates]] for e in d.ents] for d in docs]
    script = f"""
import json, spacy
nlp = spacy.load({str(tmp_path / 'pipeline')!r})
texts = {json.dumps(TEXTS)}
out = []
for text, spans in texts:
    doc = nlp.make_doc(text)
    ents, pos = [], 0
    for sub, label in spans:
        start = text.index(sub, pos); pos = start + len(sub)
        ents.append(doc.char_span(start, pos, label=label))
    doc.ents = ents
    doc = nlp(doc)
    out.append([[e.text, e.kb_id_, [list(c) for c in e._.kb_candidates]] for e in doc.ents])
print(json.dumps(out))
"""
    # a fresh interpreter that never imports spacy_sapel itself: entry points only
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_uninitialized_linker_saves_and_loads_its_settings(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", config={"top_k": 7, "threshold": 0.7, "sparse_weight": 0.3})
    nlp.to_disk(tmp_path / "p")
    nlp2 = spacy.load(tmp_path / "p")
    cfg = nlp2.get_pipe("sapel_linker").cfg
    # exactly: srsly's JSON reads 0.3 back as 0.30000000000000004
    assert (cfg["top_k"], cfg["threshold"], cfg["sparse_weight"]) == (7, 0.7, 0.3)
    assert nlp2.get_pipe("sapel_linker").linker_kb is None
    # settings come from the config, as for spaCy's components: bytes carry data only
    nlp3 = spacy.blank("en")
    nlp3.add_pipe("sapel_linker").from_bytes(nlp.get_pipe("sapel_linker").to_bytes())
    assert nlp3.get_pipe("sapel_linker").cfg["top_k"] == 5


def test_mentions_with_nothing_visible_stay_nil(nlp):
    words = ["flu", "\x00", "and", "\u200b", "asthma"]
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, i, i + 1, label="DISEASE") for i in (0, 1, 3, 4)]
    doc = nlp(doc)
    assert [(e.kb_id_, bool(e._.kb_candidates)) for e in doc.ents] == [
        ("C5", True), ("", False), ("", False), ("C6", True)
    ]


def test_candidates_are_tuples_with_two_processes(nlp):
    docs = [doc_with_ents(nlp, text, spans) for text, spans in TEXTS]
    one = [links(doc) for doc in nlp.pipe(docs)]
    two = [links(doc) for doc in nlp.pipe(
        (doc_with_ents(nlp, text, spans) for text, spans in TEXTS), n_process=2, batch_size=1
    )]
    assert two == one
    candidates = [c for doc in two for _, _, cands in doc for c in cands]
    assert candidates and all(type(c) is tuple for c in candidates)


def test_labels_the_pipelines_ner_does_not_predict_warn_at_initialize(toy_kb_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler")
    nlp.add_pipe("sapel_linker", config={"labels": ["disease", "DISEASE"]})
    nlp.config["initialize"]["components"] = {
        "entity_ruler": {"patterns": [{"label": "DISEASE", "pattern": "flu"}]},
        "sapel_linker": {"kb_loader": {"@misc": "sapel.load_kb_dir.v1", "path": str(toy_kb_dir)}},
    }
    with pytest.warns(UserWarning, match=r"W320.*\['disease'\].*\['DISEASE'\]"):
        nlp.initialize()


def test_labels_that_differ_in_case_from_the_docs_warn_once(toy_linker_kb):
    from sapel_test_utils import linker_nlp

    nlp = linker_nlp(toy_linker_kb, labels=["disease"])
    with pytest.warns(UserWarning, match=r"W322.*'disease': 'DISEASE'"):
        nlp(doc_with_ents(nlp, *TEXTS[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = nlp(doc_with_ents(nlp, *TEXTS[0]))
    assert [ent.kb_id_ for ent in doc.ents] == ["", ""]


def test_type_filter_types_the_kb_lacks_warn_once(toy_linker_kb):
    from sapel_test_utils import linker_nlp

    nlp = linker_nlp(toy_linker_kb, type_filter={"DISEASE": ["Disease", "Disorder"]})
    with pytest.warns(UserWarning, match=r"W321.*\['Disorder'\].*'Disease'"):
        nlp(doc_with_ents(nlp, *TEXTS[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nlp(doc_with_ents(nlp, *TEXTS[0]))
        linker_nlp(toy_linker_kb, type_filter={"DISEASE": ["Disease"]})(doc_with_ents(nlp, *TEXTS[0]))


def test_load_time_config_overrides_win_over_the_saved_settings(nlp, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    overrides = {"components": {"sapel_linker": {"threshold": 1.0, "abbreviations": False}}}
    loaded = spacy.load(tmp_path / "pipeline", config=overrides)
    linker = loaded.get_pipe("sapel_linker")
    assert (linker.cfg["threshold"], linker.cfg["abbreviations"]) == (1.0, False)
    config = loaded.config["components"]["sapel_linker"]
    assert (config["threshold"], config["abbreviations"]) == (1.0, False)
    assert linker.cfg["top_k"] == config["top_k"] == 3
    text = "Wilson disease (WD) and hedache"
    spans = [("WD", "DISEASE"), ("hedache", "DISEASE")]
    saved = nlp(doc_with_ents(nlp, text, spans))
    doc = loaded(doc_with_ents(loaded, text, spans))
    assert saved._.sapel_abbreviations and doc._.sapel_abbreviations is None
    # a misspelling scores below 1.0: linked at the saved threshold 0.0, NIL at 1.0
    assert saved.ents[1].kb_id_ and doc.ents[1]._.kb_candidates[0][1] < 1.0
    assert doc.ents[1].kb_id_ == ""


@pytest.mark.parametrize("part", ["encoder", "kb", "index"])
def test_a_pipeline_missing_a_kb_part_is_refused_at_load(nlp, tmp_path, part):
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(tmp_path / "pipeline" / "sapel_linker" / part)
    with pytest.raises(IndexLoadError, match=rf"E320.*sapel_linker.*{part}/ missing"):
        spacy.load(tmp_path / "pipeline")


def test_find_linkers_lists_every_sapel_linker_in_pipeline_order(toy_linker_kb, drug_linker_kb):
    from spacy_sapel.pipeline import find_linkers

    nlp = spacy.blank("en")
    nlp.add_pipe("sapel_linker", name="drugs").set_kb(lambda: drug_linker_kb)
    nlp.add_pipe("entity_ruler")
    nlp.add_pipe("sapel_linker", name="diseases").set_kb(lambda: toy_linker_kb)
    assert [(name, linker.kb.meta["name"]) for name, linker in find_linkers(nlp)] == [
        ("drugs", "drugs"), ("diseases", "toy")
    ]
    assert find_linkers(spacy.blank("en")) == []
