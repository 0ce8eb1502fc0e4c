"""The plain-torch BERT and its tokenizer against transformers' BertModel and
BertTokenizerFast: same ids, same hidden states, checkpoints read both ways."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from spacy_sapel.encoder import SapEncoder
from spacy_sapel.encoder.bert import BertSettings, load_bert
from spacy_sapel.encoder.tokenizer import EncoderTokenizer
from spacy_sapel.errors import EncoderError

transformers = pytest.importorskip("transformers")

TEXTS = [
    "Wilson's disease",
    "Naïve HEART-attack (acute)",
    "type 2 diabetes mellitus, with high blood sugar; kidney failure and chronic pain",
    "",
    "心 migraine",
    "[CLS] flu [MASK]",
    "x" * 150,
]


def hf_batch(model_dir: Path, texts, max_length: int):
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    return tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")


@pytest.fixture
def model_copy(tiny_bert_dir, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_bert_dir, tmp_path / "model"))


@pytest.mark.parametrize("max_length", [4, 12, 64])
def test_token_ids_equal_transformers(tiny_bert_dir, max_length):
    tokenizer = EncoderTokenizer.from_dir(tiny_bert_dir)
    ours = tokenizer.encode(TEXTS, max_length=max_length)
    theirs = transformers.AutoTokenizer.from_pretrained(tiny_bert_dir)(
        TEXTS, truncation=True, max_length=max_length
    )["input_ids"]
    assert ours == theirs
    longest = max(len(ids) for ids in tokenizer.encode(TEXTS, max_length=1000))
    assert max(len(ids) for ids in ours) == min(max_length, longest)


@pytest.mark.parametrize("lowercase", [True, False])
def test_vocab_txt_only_equals_transformers(model_copy, lowercase):
    """Checkpoints without tokenizer.json (BioBERT, SapBERT) are converted as
    transformers converts them, honouring do_lower_case."""
    (model_copy / "tokenizer.json").unlink()
    config_path = model_copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf8"))
    config["do_lower_case"] = lowercase
    config_path.write_text(json.dumps(config), encoding="utf8")
    ours = EncoderTokenizer.from_dir(model_copy).encode(TEXTS, max_length=20)
    theirs = transformers.BertTokenizerFast.from_pretrained(model_copy)(
        TEXTS, truncation=True, max_length=20
    )["input_ids"]
    assert ours == theirs


def test_tokenizer_config_overrides_tokenizer_json(model_copy):
    """As in transformers, do_lower_case in tokenizer_config.json wins over the
    normalizer saved in tokenizer.json."""
    config_path = model_copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf8"))
    config["do_lower_case"] = False
    config_path.write_text(json.dumps(config), encoding="utf8")
    ours = EncoderTokenizer.from_dir(model_copy)
    lower = EncoderTokenizer.from_dir(model_copy).encode(["heart"], max_length=10)
    assert ours.encode(["HEART"], max_length=10) != lower
    theirs = transformers.AutoTokenizer.from_pretrained(model_copy)
    assert ours.encode(TEXTS, max_length=10) == theirs(TEXTS, truncation=True, max_length=10)["input_ids"]


def test_hidden_states_equal_transformers(tiny_bert_dir):
    batch = hf_batch(tiny_bert_dir, TEXTS, 24)
    theirs = transformers.AutoModel.from_pretrained(tiny_bert_dir).eval()
    ours = load_bert(tiny_bert_dir)
    with torch.inference_mode():
        expected = theirs(**batch).last_hidden_state
        actual = ours(batch["input_ids"], batch["attention_mask"])
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(actual[mask], expected[mask], atol=1e-5, rtol=1e-4)


def test_dropout_only_in_training(tiny_bert_dir):
    model = load_bert(tiny_bert_dir)
    ids = torch.tensor([[2, 10, 11, 3]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.equal(model(ids, mask), model(ids, mask))
        model.train()
        torch.manual_seed(0)
        assert not torch.equal(model(ids, mask), model(ids, mask))


def test_saved_model_loads_in_transformers(tiny_bert_dir, tmp_path):
    """A SapEncoder directory is a Hugging Face checkpoint: same tensors, pooler
    included, the same hidden states from transformers."""
    encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    encoder.to_disk(tmp_path / "enc")
    assert load_file(tmp_path / "enc" / "model.safetensors").keys() == load_file(
        tiny_bert_dir / "model.safetensors"
    ).keys()
    theirs = transformers.AutoModel.from_pretrained(tmp_path / "enc").eval()
    batch = hf_batch(tmp_path / "enc", TEXTS[:3], 16)
    with torch.inference_mode():
        expected = theirs(**batch).last_hidden_state
        actual = encoder.model(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def test_head_prefix_and_tf_layer_norm_names(model_copy, tiny_bert_dir):
    """Checkpoints saved with a head (``bert.`` prefix, MLM weights) or with TF-era
    ``gamma``/``beta`` LayerNorm names load as the base model."""
    tensors = load_file(model_copy / "model.safetensors")
    renamed = {}
    for key, value in tensors.items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + key] = value
    renamed["cls.predictions.bias"] = torch.zeros(3)
    save_file(renamed, model_copy / "model.safetensors")
    original, converted = load_bert(tiny_bert_dir), load_bert(model_copy)
    for (key, a), (_, b) in zip(original.tensors().items(), converted.tensors().items()):
        assert torch.equal(a, b), key
    assert "cls.predictions.bias" not in converted.tensors()


def test_torch_bin_checkpoint(model_copy, tiny_bert_dir):
    tensors = load_file(model_copy / "model.safetensors")
    (model_copy / "model.safetensors").unlink()
    torch.save(tensors, model_copy / "pytorch_model.bin")
    assert SapEncoder.from_pretrained(model_copy, device="cpu").fingerprint == (
        SapEncoder.from_pretrained(tiny_bert_dir, device="cpu").fingerprint
    )


def test_fingerprint_equals_transformers_loaded_one(tiny_bert_dir):
    """The fingerprint reads config and tensors as transformers' BertModel held them,
    so KBs built before the encoder stopped importing transformers still match."""
    import hashlib

    encoder = SapEncoder.from_pretrained(tiny_bert_dir, device="cpu")
    model = transformers.AutoModel.from_pretrained(tiny_bert_dir)
    config = {
        key: value
        for key, value in model.config.to_diff_dict().items()
        if not key.startswith("_") and key not in ("architectures", "torch_dtype", "transformers_version")
    }
    head = {"pooling": encoder.pooling, "max_length": encoder.max_length, "config": config}
    digest = hashlib.sha256(json.dumps(head, sort_keys=True, default=str).encode("utf8"))
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode("utf8"))
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    assert encoder.fingerprint == digest.hexdigest()[:16]


@pytest.mark.parametrize(
    "change,match",
    [
        ({"model_type": "no-such-model"}, "model_type 'no-such-model' is not supported"),
        ({"hidden_act": "mish"}, "hidden_act 'mish' is not supported"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ({"num_attention_heads": 5}, "not a multiple of num_attention_heads"),
        ({"hidden_size": "32"}, "'hidden_size' is '32', expected a positive integer"),
        ({"layer_norm_eps": -1}, "'layer_norm_eps' is -1"),
    ],
)
def test_unsupported_config(model_copy, change, match):
    path = model_copy / "config.json"
    config = json.loads(path.read_text(encoding="utf8"))
    path.write_text(json.dumps({**config, **change}), encoding="utf8")
    with pytest.raises(EncoderError, match=match) as err:
        SapEncoder.from_pretrained(model_copy, device="cpu")
    assert str(path) in str(err.value)


def test_config_not_json(model_copy):
    (model_copy / "config.json").write_text("{oops", encoding="utf8")
    with pytest.raises(EncoderError, match="config.json is not a supported encoder config"):
        SapEncoder.from_pretrained(model_copy, device="cpu")


def test_wrong_weight_shapes(model_copy):
    path = model_copy / "config.json"
    config = json.loads(path.read_text(encoding="utf8"))
    path.write_text(json.dumps({**config, "intermediate_size": 48}), encoding="utf8")
    with pytest.raises(EncoderError, match="wrong shapes .*intermediate.dense.weight: \\(64, 32\\) for \\(48, 32\\)"):
        SapEncoder.from_pretrained(model_copy, device="cpu")


def test_missing_weights_named(model_copy):
    tensors = load_file(model_copy / "model.safetensors")
    del tensors["encoder.layer.1.output.dense.weight"]
    save_file(tensors, model_copy / "model.safetensors")
    with pytest.raises(EncoderError, match="encoder.layer.1.output.dense.weight"):
        SapEncoder.from_pretrained(model_copy, device="cpu")


def test_settings_fill_transformers_defaults():
    settings = BertSettings.from_dict({"model_type": "bert", "hidden_size": 64, "num_attention_heads": 4})
    assert settings.hidden_size == 64 and settings.intermediate_size == 3072
    assert settings.layer_norm_eps == 1e-12 and settings.hidden_act == "gelu"
    with pytest.raises(AttributeError):
        settings.no_such_key
