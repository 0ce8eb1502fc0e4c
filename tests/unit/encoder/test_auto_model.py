"""Encoders other than BERT through transformers' AutoModel, on a tiny local RoBERTa
(byte-level BPE tokenizer trained by the test) and a tiny DistilBERT: same vectors as
transformers computes, stable fingerprints, save/load, SAP training, and a clear error
when transformers is absent."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import spacy_sapel._compat as compat
from spacy_sapel.encoder import SapEncoder
from spacy_sapel.encoder.auto_model import AutoEncoderModel
from spacy_sapel.encoder.bert import BertEncoderModel
from spacy_sapel.errors import EncoderError
from spacy_sapel.sap.pairs import PairSet, SynonymPair
from spacy_sapel.sap.trainer import SapConfig, SapTrainer

NAMES = [
    "headache", "head ache", "migraine", "chronic migraine", "influenza", "the flu",
    "asthma", "lung asthma", "kidney failure", "chronic kidney disease", "breast cancer",
    "myocardial infarction", "heart attack", "type 2 diabetes", "high blood sugar",
]


def write_tiny_roberta(path: Path) -> Path:
    """A random 2-layer RoBERTa without pooler weights (as checkpoints saved from a
    masked-LM head are) and a byte-level BPE tokenizer trained on NAMES."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(NAMES * 5, vocab_size=320, min_frequency=1, special_tokens=specials)
    bpe.save_model(str(path))
    tokenizer = RobertaTokenizerFast(
        vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"), model_max_length=64
    )
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=66,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    torch.manual_seed(0)
    RobertaModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    for name in ("vocab.json", "merges.txt"):  # tokenizer.json holds them
        (path / name).unlink(missing_ok=True)
    return path


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory) -> Path:
    return write_tiny_roberta(tmp_path_factory.mktemp("tiny_roberta"))


def reference_vectors(path: Path, texts) -> np.ndarray:
    """Mean-pooled, normalised last hidden states as transformers computes them."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=25, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()


def test_roberta_encodes_as_transformers_does(roberta_dir):
    encoder = SapEncoder.from_pretrained(roberta_dir, pooling="mean", device="cpu")
    assert isinstance(encoder.model, AutoEncoderModel) and encoder.dim == 32
    vectors = encoder.encode(NAMES)
    np.testing.assert_allclose(vectors, reference_vectors(roberta_dir, NAMES), atol=1e-5)
    # padding (id 1 for RoBERTa) does not change a name's vector
    alone = encoder.encode(["flu"])[0]
    np.testing.assert_allclose(encoder.encode(["flu", "chronic kidney disease of the heart"])[0], alone, atol=1e-5)


def test_roberta_fingerprint_is_stable_and_survives_save_and_load(roberta_dir, tmp_path):
    first = SapEncoder.from_pretrained(roberta_dir, pooling="cls", device="cpu")
    second = SapEncoder.from_pretrained(roberta_dir, pooling="cls", device="cpu")
    # the pooler the checkpoint lacks is dropped, not initialised at random
    assert first.model.model.pooler is None and first.fingerprint == second.fingerprint
    first.to_disk(tmp_path / "enc")
    loaded = SapEncoder.from_disk(tmp_path / "enc", device="cpu")
    assert loaded.fingerprint == first.fingerprint and isinstance(loaded.model, AutoEncoderModel)
    np.testing.assert_array_equal(loaded.encode(NAMES), first.encode(NAMES))
    restored = SapEncoder.from_bytes(first.to_bytes(), device="cpu")
    assert restored.fingerprint == first.fingerprint


def test_roberta_max_length_counts_tokens_not_positions(roberta_dir):
    # max_position_embeddings 66 minus RoBERTa's padding offset of 2
    assert SapEncoder.from_pretrained(roberta_dir, max_length=64, device="cpu").max_length == 64
    with pytest.raises(ValueError, match="E213.*from 3 to 64"):
        SapEncoder.from_pretrained(roberta_dir, max_length=65, device="cpu")


def test_roberta_trains_with_sap(roberta_dir, tmp_path):
    encoder = SapEncoder.from_pretrained(roberta_dir, pooling="mean", device="cpu")
    before = {k: v.clone() for k, v in encoder.model.tensors().items()}
    pairs = PairSet(
        [SynonymPair(f"c{i // 2}", NAMES[i], NAMES[i + 1]) for i in range(0, 14, 2)], "toy"
    )
    config = SapConfig(batch_size=7, max_steps=2, lr=1e-3, freeze_embeddings=True)
    result = SapTrainer(encoder, pairs, tmp_path, config=config).train(show_progress=False)
    trained = SapEncoder.from_disk(result.model_dir, device="cpu")
    changed = {k for k, v in trained.model.tensors().items() if not torch.equal(v, before[k])}
    assert "encoder.layer.0.attention.self.query.weight" in changed
    assert not {k for k in changed if k.startswith("embeddings.")}


def test_distilbert_loads_through_automodel(tiny_bert_dir, tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    path = tmp_path / "distil"
    vocab = (tiny_bert_dir / "vocab.txt").read_text(encoding="utf8").split()
    config = DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=64)
    torch.manual_seed(0)
    DistilBertModel(config).save_pretrained(path)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_bert_dir / name).is_file():
            (path / name).write_bytes((tiny_bert_dir / name).read_bytes())
    encoder = SapEncoder.from_pretrained(path, pooling="mean", device="cpu")
    assert encoder.dim == 32 and encoder.encode(NAMES).shape == (len(NAMES), 32)
    np.testing.assert_allclose(encoder.encode(NAMES), reference_vectors(path, NAMES), atol=1e-5)


def test_bert_keeps_the_plain_torch_model(tiny_bert_dir):
    assert isinstance(SapEncoder.from_pretrained(tiny_bert_dir, device="cpu").model, BertEncoderModel)


def test_without_transformers_a_clear_error(roberta_dir, tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(compat, "HAS_TRANSFORMERS", False)
    with pytest.raises(ImportError, match="E224.*pip install transformers") as err:
        SapEncoder.from_pretrained(roberta_dir, device="cpu")
    assert str(roberta_dir) in str(err.value)
    SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")  # BERT needs no transformers


def test_unknown_model_type_is_named(roberta_dir, tmp_path):
    import json
    import shutil

    path = tmp_path / "odd"
    shutil.copytree(roberta_dir, path)
    config = json.loads((path / "config.json").read_text(encoding="utf8"))
    (path / "config.json").write_text(json.dumps({**config, "model_type": "no-such-model"}), encoding="utf8")
    with pytest.raises(EncoderError, match="E222.*model_type 'no-such-model' is not supported"):
        SapEncoder.from_pretrained(path, device="cpu")
