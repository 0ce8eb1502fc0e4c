"""Retrieval-aware training on a tiny local BERT: candidates are refreshed on schedule
(whole KB or the sampled set), the loss falls, held-out synonyms rank better, resume
equals an uninterrupted run, and the recipe refuses what it cannot use."""
from __future__ import annotations

import numpy as np
import pytest
import srsly
import torch
from sapel_test_utils import TOY_CONCEPTS, TOY_KEYS, TOY_TEMPLATES

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.index.sparse import SparseIndex
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.kb.knowledge_base import name_key
from spacy_sapel.sap.retrieval import RetrievalConfig, RetrievalTrainer, marginal_nll

# As in test_trainer: a key word per concept, filler shared across concepts, so
# an untrained encoder confuses concepts and training must learn the key words.
KEYS, TEMPLATES, CONCEPTS = TOY_KEYS, TOY_TEMPLATES, TOY_CONCEPTS
# concepts no mention links to, so that a sampled refresh leaves some names out
DISTRACTORS = {
    f"D{i}": [f"{a} {b}", f"{b} of {a}"]
    for i, (a, b) in enumerate(
        [("kidney", "attack"), ("breast", "tumour"), ("lung", "flu"), ("wilson", "sugar"),
         ("myocardial", "infarction"), ("head", "ache"), ("kidney", "pain"), ("heart", "attack")]
    )
}


def toy_kb(*, distractors: bool = False) -> KnowledgeBase:
    """The toy concepts with their first six names (the rest are mentions)."""
    concepts = {cid: names[:6] for cid, names in CONCEPTS.items()}
    if distractors:
        concepts.update(DISTRACTORS)
    return KnowledgeBase.from_concepts(Concept(cid, n[0], n[1:]) for cid, n in concepts.items())


def mentions():
    """Two training mentions per concept (its 7th and 8th names)."""
    return [(name, cid) for cid, names in CONCEPTS.items() for name in names[6:8]]


def held_out_accuracy(encoder: SapEncoder) -> float:
    """acc@1 of linking each concept's last name (never trained on) against the KB."""
    names, rows = toy_kb().alias_table()
    scores = encoder.encode([n[-1] for n in CONCEPTS.values()]) @ encoder.encode(names).T
    return float(np.mean([rows[scores[q].argmax()] == q for q in range(len(CONCEPTS))]))


def full_loss(trainer: RetrievalTrainer, candidates: np.ndarray) -> float:
    trainer.candidates = candidates
    trainer.encoder.model.eval()
    with torch.no_grad():
        return float(trainer.batch_loss(np.arange(len(trainer.queries))))


@pytest.fixture()
def encoder(tiny_bert_dir) -> SapEncoder:
    return SapEncoder.from_pretrained(tiny_bert_dir, device="cpu", pooling="mean")


CFG = dict(batch_size=4, lr=2e-3, epochs=8, n_candidates=6, checkpoint_every=1000, seed=3)


def test_marginal_nll_is_biosyn_synonym_marginalisation():
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    gold = torch.tensor([[True, True, False], [True, False, False]])
    probs = scores.softmax(dim=1)
    expected = -(torch.log(probs[0, :2].sum()) + torch.log(probs[1, 0])) / 2
    torch.testing.assert_close(marginal_nll(scores, gold), expected)


# the multi-similarity loss falls slowly: its positive term stays near
# log(1 + exp(-alpha (s - base))) even once every gold name is first (0.99 -> 0.91)
@pytest.mark.parametrize("loss,factor", [("marginal", 0.75), ("multi_similarity", 0.95)])
def test_loss_falls_and_held_out_synonyms_rank_better(encoder, tmp_path, loss, factor):
    config = RetrievalConfig(**CFG, loss=loss)
    trainer = RetrievalTrainer(encoder, toy_kb(), mentions(), tmp_path, config=config)
    trainer.refresh(0)
    before = trainer.candidates.copy()
    loss_before, acc_before = full_loss(trainer, before), held_out_accuracy(encoder)
    result = trainer.train(show_progress=False)
    assert full_loss(trainer, before) < factor * loss_before
    acc_after = held_out_accuracy(SapEncoder.from_disk(result.model_dir, device="cpu"))
    assert acc_after >= acc_before + 0.25, (acc_before, acc_after)
    assert result.steps == result.total_steps == 8 * 4
    # refresh_every=0: candidates retrieved afresh at the start of every epoch
    assert [r["step"] for r in result.refreshes[1:]] == list(range(0, 32, 4))
    log = srsly.read_json(tmp_path / "training.json")
    assert log["objective"] == "retrieval" and len(log["result"]["refreshes"]) == 9


def test_multi_similarity_loss_has_the_gold_names_as_positives_and_the_rest_as_negatives(encoder, tmp_path):
    config = RetrievalConfig(**CFG, loss="multi_similarity", alpha=2.0, beta=40.0, base=0.4)
    trainer = RetrievalTrainer(encoder, toy_kb(), mentions(), tmp_path, config=config)
    trainer.refresh(0)
    rows = np.arange(3)
    encoder.model.eval()
    with torch.no_grad():
        loss = float(trainer.batch_loss(rows))
    expected = []
    for q in rows:
        names = trainer.candidates[q]
        sims = encoder.encode([trainer.queries[q]]) @ encoder.encode([trainer.names[i] for i in names]).T
        gold = trainer.name_rows[names] == trainer.gold[q]
        assert gold.any() and not gold.all()
        expected.append(np.log1p(np.exp(-2.0 * (sims[0, gold] - 0.4)).sum()) / 2.0
                        + np.log1p(np.exp(40.0 * (sims[0, ~gold] - 0.4)).sum()) / 40.0)
    assert loss == pytest.approx(float(np.mean(expected)), rel=1e-4)


@pytest.mark.parametrize(
    "settings,error",
    [({"loss": "triplet"}, r"E624.*'triplet'.*marginal, multi_similarity"),
     ({"loss": ["marginal"]}, r"E624.*\['marginal'\]"),
     ({"alpha": 2.0}, r"E625.*alpha=2.0.*'marginal' loss.*default \(1.0\).*loss='multi_similarity'"),
     ({"loss": "multi_similarity", "scale": 10.0}, r"E625.*scale=10.0.*'multi_similarity'.*loss='marginal'"),
     ({"loss": "multi_similarity", "base": 1.5}, r"E602.*base=1.5"),
     ({"loss": "multi_similarity", "beta": 0}, r"E602.*beta=0")],
)
def test_settings_of_the_other_loss_are_refused(settings, error):
    with pytest.raises(ValueError, match=error):
        RetrievalConfig(**settings).check()


def test_sparse_candidates_come_first_and_dense_retrieval_fills_the_rest(encoder, tmp_path):
    kb = toy_kb(distractors=True)
    kb.add_aliases("C0", [mentions()[0][0].upper()], source="train mentions")
    cfg = RetrievalConfig(**{**CFG, "n_candidates": 5, "sparse_candidates": 2, "epochs": 1})
    trainer = RetrievalTrainer(encoder, kb, mentions(), tmp_path, config=cfg)
    trainer.refresh(0)
    index = SparseIndex()
    index.build(trainer.names)
    _, nearest = index.search(trainer.queries, 10)
    dense = encoder.encode(trainer.queries) @ trainer.vectors.T
    keys = [name_key(n) for n in trainer.names]
    for q, text in enumerate(trainer.queries):
        candidates = trainer.candidates[q]
        assert len(set(candidates.tolist())) == 5
        assert name_key(text) not in {keys[i] for i in candidates}
        # the two nearest names by n-grams, the mention's own spelling skipped
        lexical = [i for i in nearest[q] if keys[i] != name_key(text)][:2]
        assert candidates[:2].tolist() == lexical
        # then the best dense names not picked yet (or the gold's best name, last)
        scores = np.where([keys[i] == name_key(text) for i in range(len(keys))], -np.inf, dense[q])
        order = [i for i in np.argsort(-scores, kind="stable") if i not in lexical]
        gold_last = trainer.name_rows[candidates[-1]] == trainer.gold[q]
        assert candidates[2:4].tolist() == order[:2]
        assert candidates[4] == order[2] or gold_last
        assert (trainer.name_rows[candidates] == trainer.gold[q]).any()
    first = trainer.candidates[:, :2].copy()
    trainer.train(show_progress=False)
    trainer.refresh(trainer.total_steps)
    # the lexical picks do not move with the weights
    np.testing.assert_array_equal(trainer.candidates[:, :2], first)
    with pytest.raises(ValueError, match=r"E626.*sparse_candidates=5.*n_candidates=5"):
        RetrievalConfig(n_candidates=5, sparse_candidates=5).check()
    with pytest.raises(ValueError, match=r"E702.*sparse_candidates"):
        RetrievalConfig(sparse_candidates=-1).check()


def test_candidates_exclude_the_mention_and_always_hold_the_gold_concept(encoder, tmp_path):
    kb = toy_kb()
    kb.add_aliases("C0", [mentions()[0][0].upper()], source="train mentions")
    cfg = RetrievalConfig(**{**CFG, "n_candidates": 2})
    trainer = RetrievalTrainer(encoder, kb, mentions(), tmp_path, config=cfg)
    record = trainer.refresh(0)
    names = np.asarray(trainer.names)
    for q, text in enumerate(trainer.queries):
        assert text.upper() not in {n.upper() for n in names[trainer.candidates[q]]}
        assert (trainer.name_rows[trainer.candidates[q]] == trainer.gold[q]).any()
    # with 2 candidates among 49 names, the untrained encoder misses some gold concepts
    assert record["gold_retrieved"] < 1.0 and record["names"] == len(names)


def test_given_name_vectors_spare_the_first_encoding(encoder, tmp_path):
    kb, cfg = toy_kb(), RetrievalConfig(**CFG)
    plain = RetrievalTrainer(encoder, kb, mentions(), tmp_path, config=cfg)
    plain.refresh(0)
    vectors = encoder.encode(kb.alias_table()[0])
    given = RetrievalTrainer(encoder, kb, mentions(), tmp_path, config=cfg, name_vectors=vectors)
    assert given.refresh(0)["names"] == 0 and given.refresh(1)["names"] == len(given.names)
    np.testing.assert_array_equal(given.candidates, plain.candidates)
    with pytest.raises(ValueError, match="E602.*name_vectors"):
        RetrievalTrainer(encoder, kb, mentions(), tmp_path, config=cfg, name_vectors=vectors[1:])


def test_sampled_refresh_reencodes_the_retrieved_concepts_plus_a_sample(encoder, tmp_path):
    cfg = RetrievalConfig(**{**CFG, "n_candidates": 3, "refresh_every": 2, "refresh_names": 3, "max_steps": 5})
    few = mentions()[:4]  # concepts C0 and C1 only
    trainer = RetrievalTrainer(encoder, toy_kb(distractors=True), few, tmp_path, config=cfg)
    refresh = trainer.refresh
    seen = []

    def spy(step):
        old = None if trainer.vectors is None else (trainer.vectors.copy(), trainer.candidates.copy())
        record = refresh(step)
        seen.append((step, old, trainer.vectors.copy(), record))
        return record

    trainer.refresh = spy
    trainer.train(show_progress=False)
    assert [step for step, *_ in seen] == [0, 2, 4]
    assert seen[0][3]["names"] == len(trainer.names)  # the first refresh is whole
    for step, (old_vectors, old_candidates), new_vectors, record in seen[1:]:
        concepts = set(trainer.name_rows[old_candidates].ravel()) | set(trainer.gold)
        in_set = np.isin(trainer.name_rows, sorted(concepts))
        assert record["names"] == in_set.sum() + 3 < len(trainer.names)
        changed = np.any(old_vectors != new_vectors, axis=1)
        assert changed[in_set].all()  # the weights moved: re-encoded vectors differ
        assert changed[~in_set].sum() == 3  # the random sample; the others are kept


def test_full_refresh_every_n_steps(encoder, tmp_path):
    cfg = RetrievalConfig(**{**CFG, "refresh_every": 3, "max_steps": 7})
    trainer = RetrievalTrainer(encoder, toy_kb(), mentions(), tmp_path, config=cfg)
    result = trainer.train(show_progress=False)
    assert [r["step"] for r in result.refreshes] == [0, 3, 6]
    assert {r["names"] for r in result.refreshes} == {len(trainer.names)}


def test_resume_reproduces_the_uninterrupted_run(tiny_bert_dir, tmp_path):
    cfg = dict(CFG, max_steps=7, checkpoint_every=2, grad_accum=2, batch_size=3, warmup_ratio=0.2,
               refresh_every=3, refresh_names=4, sparse_candidates=2)
    kb = toy_kb(distractors=True)
    full = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    done = RetrievalTrainer(full, kb, mentions(), tmp_path / "full", config=RetrievalConfig(**cfg))
    done.train(show_progress=False)

    # a run killed during step 5: its last checkpoint is step 4, after the refresh at 3
    part = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    trainer = RetrievalTrainer(part, kb, mentions(), tmp_path / "part", config=RetrievalConfig(**cfg))
    calls = {"n": 0}
    batch_loss = trainer.batch_loss

    def killed(rows):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return batch_loss(rows)

    trainer.batch_loss = killed
    with pytest.raises(KeyboardInterrupt):
        trainer.train(show_progress=False)
    assert srsly.read_json(tmp_path / "part" / "checkpoint" / "state.json")["step"] == 4
    resumed_encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    # vectors given for a fresh start are overridden by the checkpoint's
    stale = np.zeros((len(kb.alias_table()[0]), resumed_encoder.dim), dtype=np.float32)
    resumed = RetrievalTrainer(
        resumed_encoder, kb, mentions(), tmp_path / "part", config=RetrievalConfig(**cfg), name_vectors=stale
    )
    result = resumed.train(resume=True, show_progress=False)
    assert result.steps == 7 and [r["step"] for r in result.refreshes] == [0, 3, 6]
    np.testing.assert_array_equal(resumed.candidates, done.candidates)
    np.testing.assert_array_equal(resumed.vectors, done.vectors)
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed_encoder.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)

    fresh = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    other = RetrievalConfig(**{**cfg, "scale": 5.0})
    with pytest.raises(ValueError, match="E605.*scale"):
        RetrievalTrainer(fresh, kb, mentions(), tmp_path / "part", config=other).train(resume=True, show_progress=False)
    with pytest.raises(ValueError, match="E605.*other mentions"):
        RetrievalTrainer(fresh, kb, mentions()[1:], tmp_path / "part", config=RetrievalConfig(**cfg)).train(
            resume=True, show_progress=False
        )
    with pytest.raises(ValueError, match="E606"):
        RetrievalTrainer(fresh, kb, mentions(), tmp_path / "none", config=other).train(resume=True, show_progress=False)


def test_mentions_without_other_gold_names_are_skipped(encoder, tmp_path):
    kb = toy_kb()
    kb.add_concept(Concept("S", "lung flu"))
    with pytest.warns(UserWarning, match="W620.*not in the KB: 1.*no other name.*: 1"):
        trainer = RetrievalTrainer(
            encoder, kb, [*mentions(), ("headache", "C0"), ("x", "NOPE"), ("Lung Flu", "S")], tmp_path,
            config=RetrievalConfig(**CFG),
        )
    assert len(trainer.queries) == len(mentions()) + 1  # "headache" has other C0 names
    single = KnowledgeBase.from_concepts([Concept("A", "flu"), Concept("B", "asthma")])
    with pytest.raises(ValueError, match="E623"):
        RetrievalTrainer(encoder, single, [("flu", "A")], tmp_path, config=RetrievalConfig(**CFG))
    with pytest.raises(ValueError, match="E702.*n_candidates"):
        RetrievalConfig(n_candidates=0).check()


CORPUS = "".join(
    f"{i}|t|{text}\n{i}|a|x\n{i}\t0\t{len(text)}\t{text}\tDisease\t{cid}\n\n"
    for i, (text, cid) in enumerate(mentions())
)


def recipe_inputs(tmp_path):
    """The toy KB as a NeMo index file, CORPUS as PubTator, and the registered recipe."""
    from spacy.util import registry

    kb_file, corpus = tmp_path / "kb.tsv", tmp_path / "train.txt"
    kb_file.write_text(
        "".join(f"{c.concept_id}\t{n}\n" for c in toy_kb() for n in c.names()), encoding="utf8"
    )
    corpus.write_text(CORPUS, encoding="utf8")
    return kb_file, corpus, registry.misc.get("sapel.pretrain_sap.v1")


def test_registered_recipe_with_the_retrieval_objective(tiny_bert_dir, tmp_path):
    kb_file, corpus, make = recipe_inputs(tmp_path)
    run = make(
        base_encoder=str(tiny_bert_dir), kb_paths=[str(kb_file)], corpus=str(corpus),
        corpus_aliases=True, objective="retrieval",
        training={"batch_size": 4, "max_steps": 2, "lr": 1e-3, "n_candidates": 4},
    )
    result = run(tmp_path / "out", show_progress=False, device="cpu")
    assert result.steps == 2 and result.refreshes[0]["names"] == 48 + 16  # + the mentions as aliases
    assert srsly.read_json(tmp_path / "out" / "training.json")["recipe"]["objective"] == "retrieval"
    with pytest.raises(ValueError, match="E620"):
        make(kb_paths=[str(kb_file)], objective="retrieval")
    with pytest.raises(ValueError, match="E621.*validation_fraction"):
        make(kb_paths=[str(kb_file)], corpus=str(corpus), objective="retrieval", validation_fraction=0.1)
    with pytest.raises(ValueError, match="E630.*'batching'"):
        make(kb_paths=[str(kb_file)], corpus=str(corpus), objective="retrieval", training={"batching": "hard"})
    with pytest.raises(ValueError, match="E622"):
        make(objective="biosyn")


def test_vocabulary_names_as_extra_queries(tiny_bert_dir, tmp_path):
    kb_file, corpus, make = recipe_inputs(tmp_path)
    training = {"batch_size": 4, "max_steps": 1, "lr": 1e-3, "n_candidates": 4}
    queries = {}
    for n in (0, 10):
        run = make(
            base_encoder=str(tiny_bert_dir), kb_paths=[str(kb_file)], corpus=str(corpus),
            corpus_aliases=True, objective="retrieval", training=training, synonym_queries=n,
        )
        run(tmp_path / f"out{n}", show_progress=False, device="cpu")
        log = srsly.read_json(tmp_path / f"out{n}" / "training.json")
        assert log["recipe"]["synonym_queries"] == n
        queries[n] = log["n_mentions"]
    # sampled from the vocabulary before the corpus mentions became aliases: none of
    # the 10 is one of the 16 mentions, so each adds a query
    assert queries == {0: 16, 10: 26}
    with pytest.raises(ValueError, match="E621.*synonym_queries"):
        make(kb_paths=[str(kb_file)], synonym_queries=10)
    with pytest.raises(ValueError, match="E702.*synonym_queries"):
        make(kb_paths=[str(kb_file)], corpus=str(corpus), objective="retrieval", synonym_queries=-1)
