"""SAP training on a tiny local BERT: the loss falls, held-out synonyms rank better,
checkpoint + resume equals an uninterrupted run, and bad input fails clearly."""
from __future__ import annotations

import numpy as np
import pytest
import srsly
import torch
from sapel_test_utils import TOY_CONCEPTS, TOY_KEYS, TOY_TEMPLATES

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.kb import Concept, KnowledgeBase
from spacy_sapel.sap.pairs import PairSet, SynonymPair, kb_pairs
from spacy_sapel.sap.recipe import create_sap_pretrainer
from spacy_sapel.sap.trainer import SapConfig, SapTrainer

# Each concept has a key word in every name; the rest of a name is filler that other
# concepts share. A held-out name (the last) shares its filler with training names of
# other concepts, so an untrained encoder confuses them, and SAP must learn to attend
# to the key word.
KEYS, TEMPLATES, CONCEPTS = TOY_KEYS, TOY_TEMPLATES, TOY_CONCEPTS


def toy_kb() -> KnowledgeBase:
    """The toy concepts without their held-out last name."""
    return KnowledgeBase.from_concepts(
        Concept(cid, names[0], names[1:-1]) for cid, names in CONCEPTS.items()
    )


def held_out_accuracy(encoder: SapEncoder) -> float:
    """acc@1 of linking each concept's held-out name against the toy KB."""
    names, rows = toy_kb().alias_table()
    scores = encoder.encode([n[-1] for n in CONCEPTS.values()]) @ encoder.encode(names).T
    return float(np.mean([rows[scores[q].argmax()] == q for q in range(len(CONCEPTS))]))


def full_batch_loss(trainer: SapTrainer, pairs: PairSet) -> float:
    trainer.encoder.model.eval()
    with torch.no_grad():
        return float(trainer._batch_loss(pairs.pairs, False)[0])


@pytest.fixture()
def encoder(tiny_bert_dir) -> SapEncoder:
    return SapEncoder.from_pretrained(tiny_bert_dir, device="cpu", pooling="mean")


CFG = dict(batch_size=32, lr=2e-3, epochs=3, checkpoint_every=1000, seed=7)


@pytest.mark.parametrize("batching", ["random", "hard"])
def test_loss_falls_and_held_out_synonyms_rank_better(encoder, tmp_path, batching):
    pairs = kb_pairs(toy_kb(), seed=0)
    cfg = SapConfig(**CFG, batching=batching, concepts_per_batch=4)
    trainer = SapTrainer(encoder, pairs, tmp_path, config=cfg)
    loss_before, acc_before = full_batch_loss(trainer, pairs), held_out_accuracy(encoder)
    result = trainer.train(show_progress=False)
    assert full_batch_loss(trainer, pairs) < 0.9 * loss_before
    trained = SapEncoder.from_disk(result.model_dir, device="cpu")
    acc_after = held_out_accuracy(trained)
    assert acc_after >= acc_before + 0.25, (acc_before, acc_after)
    assert result.steps == result.total_steps == 3 * 7
    assert trained.fingerprint != SapEncoder.from_pretrained(trainer.base_name, device="cpu").fingerprint
    # the output loads with from_pretrained too, keeping its pooling
    assert SapEncoder.from_pretrained(result.model_dir, device="cpu").pooling == "mean"


@pytest.mark.parametrize("batching", ["random", "hard"])
def test_resume_reproduces_the_uninterrupted_run(tiny_bert_dir, tmp_path, batching):
    pairs = kb_pairs(toy_kb(), seed=0)
    cfg = dict(CFG, max_steps=6, checkpoint_every=2, grad_accum=2, batch_size=8, warmup_ratio=0.2,
               batching=batching, concepts_per_batch=4)
    full = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    uninterrupted = SapTrainer(full, pairs, tmp_path / "full", config=SapConfig(**cfg)).train(show_progress=False)

    # a run killed during step 4: its last checkpoint is step 2, step 3 is lost
    part = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    trainer = SapTrainer(part, pairs, tmp_path / "part", config=SapConfig(**cfg))
    calls = {"n": 0}
    batch_loss = trainer._batch_loss

    def killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return batch_loss(*args, **kwargs)

    trainer._batch_loss = killed
    with pytest.raises(KeyboardInterrupt):
        trainer.train(show_progress=False)
    assert srsly.read_json(tmp_path / "part" / "checkpoint" / "state.json")["step"] == 2
    assert not (tmp_path / "part" / "model-last").exists()
    resumed = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    result = SapTrainer(resumed, pairs, tmp_path / "part", config=SapConfig(**cfg)).train(
        resume=True, show_progress=False
    )
    assert result.steps == 6
    # the running loss goes on from the checkpoint's steps, not from the resumed ones only
    assert result.final_loss == pytest.approx(uninterrupted.final_loss, rel=1e-5)
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_resume_from_another_base_model_is_refused(tiny_bert_dir, other_tiny_bert_dir, tmp_path):
    pairs = kb_pairs(toy_kb(), seed=0)
    cfg = SapConfig(batch_size=16, max_steps=1)
    enc = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    SapTrainer(enc, pairs, tmp_path, config=cfg).train(show_progress=False)
    other = SapEncoder.from_pretrained(other_tiny_bert_dir, device="cpu")
    with pytest.raises(ValueError, match="E605.*base encoder"):
        SapTrainer(other, pairs, tmp_path, config=cfg).train(resume=True, show_progress=False)
    changed = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    with pytest.raises(ValueError, match="E605.*lr"):
        SapTrainer(changed, pairs, tmp_path, config=SapConfig(batch_size=16, max_steps=1, lr=1.0)).train(
            resume=True, show_progress=False
        )


def test_resume_without_checkpoint(encoder, tmp_path):
    with pytest.raises(ValueError, match="E606"):
        SapTrainer(encoder, kb_pairs(toy_kb()), tmp_path, config=SapConfig(max_steps=1)).train(
            resume=True, show_progress=False
        )


def test_batch_too_small(encoder, tmp_path):
    with pytest.raises(ValueError, match="E604"):
        SapTrainer(encoder, kb_pairs(toy_kb()), tmp_path, config=SapConfig(batch_size=1))


def test_batches_without_hard_pairs_warn(encoder, tmp_path):
    # 3 pairs in batches of 2: the last batch holds one pair, one concept, no negative
    pairs = PairSet(
        [
            SynonymPair("a", "flu", "influenza"),
            SynonymPair("a", "the flu", "influenza fever"),
            SynonymPair("b", "asthma", "lung asthma"),
        ],
        "toy",
    )
    with pytest.warns(UserWarning, match="W601"):
        result = SapTrainer(encoder, pairs, tmp_path, config=SapConfig(batch_size=2)).train(
            show_progress=False
        )
    assert result.batches_without_hard_pairs >= 1


def test_time_budget_stops_with_a_warning(encoder, tmp_path):
    cfg = SapConfig(batch_size=8, epochs=5, max_seconds=1e-9)
    with pytest.warns(UserWarning, match="W602"):
        result = SapTrainer(encoder, kb_pairs(toy_kb()), tmp_path, config=cfg).train(show_progress=False)
    assert result.steps == 1 and (tmp_path / "checkpoint" / "state.pt").is_file()


def test_validation_and_registered_recipe(tiny_bert_dir, tmp_path):
    from spacy.util import registry

    kb_file = tmp_path / "kb.tsv"
    kb_file.write_text(
        "".join(f"{cid}\t{name}\n" for cid, names in CONCEPTS.items() for name in names),
        encoding="utf8",
    )
    make = registry.misc.get("sapel.pretrain_sap.v1")
    assert make is create_sap_pretrainer
    run = make(
        base_encoder=str(tiny_bert_dir),
        kb_paths=kb_file,  # one path (a list of them in the retrieval test)
        reader="nemo_index",
        validation_fraction=0.25,
        training={"batch_size": 16, "max_steps": 2, "lr": 1e-3},
    )
    result = run(tmp_path / "out", show_progress=False, device="cpu")
    assert set(result.validation) == {"before", "after"}
    log = srsly.read_json(tmp_path / "out" / "training.json")
    assert log["recipe"]["validation_fraction"] == 0.25 and log["recipe"]["kb_paths"] == [str(kb_file)]
    with pytest.raises(ValueError, match="E630.*'nonsense'"):
        make(training={"nonsense": 1})


def test_lower_punct_normalisation_is_saved_and_applied(tiny_bert_dir, tmp_path):
    from spacy_sapel.encoder.sap_encoder import normalize_text

    assert normalize_text("Wiskott-Aldrich  Syndrome (WAS)") == "wiskott aldrich syndrome was"
    assert normalize_text("+") == "+"
    enc = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu", normalize="lower_punct")
    a, b = enc.encode(["Head-Ache, (chronic)", "head ache chronic"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    plain = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    assert plain.fingerprint != enc.fingerprint and plain.cfg["normalize"] == "none"
    enc.to_disk(tmp_path / "enc")
    loaded = SapEncoder.from_disk(tmp_path / "enc", device="cpu")
    assert loaded.normalize == "lower_punct" and loaded.fingerprint == enc.fingerprint
    assert SapEncoder.from_pretrained(tmp_path / "enc", device="cpu").normalize == "lower_punct"
    with pytest.raises(ValueError, match="E212"):
        SapEncoder.from_pretrained(tiny_bert_dir, device="cpu", normalize="upper")


def test_an_output_it_may_not_replace_is_refused_before_training(encoder, tmp_path):
    """model-last/ and checkpoint/ are replaced only if they are SAP outputs: a user's
    folder of that name stops the run before any training step."""
    from spacy_sapel.errors import OutputError

    (tmp_path / "model-last").mkdir()
    (tmp_path / "model-last" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"E423.*model-last.*notes.txt"):
        SapTrainer(encoder, kb_pairs(toy_kb()), tmp_path, config=SapConfig(max_steps=1))
    (tmp_path / "model-last" / "notes.txt").unlink()
    (tmp_path / "checkpoint").write_text("a file")
    with pytest.raises(OutputError, match=r"E422.*checkpoint"):
        SapTrainer(encoder, kb_pairs(toy_kb()), tmp_path, config=SapConfig(max_steps=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "model-last"]
