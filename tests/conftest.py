"""Shared fixtures: tiny locally-built BERT encoders, the shared data folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SHARED_DATA = Path(os.environ.get("SAPEL_SHARED_DATA", HERE.parent.parent / "shared" / "data"))

# A small WordPiece vocabulary: specials, letters, digits, word pieces and some words
# of the test knowledge bases, so that tokenisation is realistic but the model tiny.
_WORDS = (
    "the of and in a to is with disease syndrome cancer heart attack kidney failure "
    "chronic acute pain head ache headache migraine diabetes type blood sugar high "
    "low infarction myocardial wilson liver tumor tumour breast lung fever flu "
    "influenza asthma"
).split()


def write_tiny_bert(path: Path, *, seed: int = 0, hidden_size: int = 32) -> Path:
    """Write a randomly initialised 2-layer BERT and its WordPiece vocab to ``path``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list("-()[],.;:'/+%&")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += chars + punct + [f"##{c}" for c in chars] + _WORDS
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(dict.fromkeys(vocab)),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A tiny random BERT (hidden size 32) saved as a Hugging Face model directory."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def other_tiny_bert_dir(tmp_path_factory) -> Path:
    """A second tiny BERT with different weights (for fingerprint mismatches)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_other"), seed=1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA
