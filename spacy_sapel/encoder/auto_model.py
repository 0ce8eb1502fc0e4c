"""Encoders other than BERT (RoBERTa, XLM-RoBERTa — SapBERT's multilingual model is
one —, DistilBERT, ...) through transformers' ``AutoModel``, behind the interface of
:class:`.bert.BertEncoderModel`: ``forward(input_ids, attention_mask)`` gives the last
hidden states, ``config`` the checked config, ``tensors()`` and ``save()`` what the
fingerprint and the saved directory need.

transformers is imported only here, and only when such a model is loaded: BERT-family
checkpoints keep the fast plain-torch path of :mod:`.bert`, and a lean install without
transformers still links with them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import torch
from torch import nn

from .._compat import import_transformers
from ..errors import EncoderError, Errors
from .bert import SAFETENSORS

# position ids of these models start after the padding index, so that a config's
# max_position_embeddings of 514 allows 512 tokens
_PADDING_OFFSET_TYPES = ("roberta", "xlm-roberta", "camembert")


def read_model_type(path: Path) -> Any:
    """The ``model_type`` of a model directory's ``config.json``."""
    config_file = path / "config.json"
    try:
        raw = json.loads(config_file.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EncoderError(Errors.E222.format(path=config_file, problem=err)) from err
    if not isinstance(raw, dict):
        raise EncoderError(Errors.E222.format(path=config_file, problem="not a JSON object"))
    return raw.get("model_type")


class AutoSettings:
    """A transformers config seen as :class:`.bert.BertSettings` is: ``values`` (what
    the fingerprint covers) and attribute access; ``max_position_embeddings`` is the
    number of tokens the model takes (the padding offset of RoBERTa-style models off)."""

    def __init__(self, hf_config: Any) -> None:
        self.hf_config = hf_config
        self.values: Dict[str, Any] = hf_config.to_dict()

    @property
    def hidden_size(self) -> int:
        size = getattr(self.hf_config, "hidden_size", None) or getattr(self.hf_config, "dim", None)
        return int(size)

    @property
    def max_position_embeddings(self) -> int:
        positions = int(self.hf_config.max_position_embeddings)
        if self.hf_config.model_type in _PADDING_OFFSET_TYPES:
            positions -= int(self.hf_config.pad_token_id) + 1
        return positions

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(key)


class AutoEncoderModel(nn.Module):
    """A transformers base model (no head) with the interface of ``BertEncoderModel``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = AutoSettings(model.config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def tensors(self) -> Dict[str, torch.Tensor]:
        return dict(self.model.state_dict())

    def save(self, path: Path) -> None:
        """``config.json`` and ``model.safetensors`` into the directory ``path``."""
        self.model.save_pretrained(str(path), safe_serialization=True)
        if not (path / SAFETENSORS).is_file():  # pragma: no cover - transformers' layout
            raise EncoderError(Errors.E204.format(path=path))


def load_auto(path: Path) -> AutoEncoderModel:
    """The float32 base model of a model directory through ``AutoModel``. A pooler that
    the checkpoint lacks is dropped (CLS and mean pooling never use it; random weights
    would change the fingerprint on every load); any other missing weight is an error."""
    transformers = import_transformers(path)
    model_type = read_model_type(path)
    try:
        model, info = transformers.AutoModel.from_pretrained(
            str(path), output_loading_info=True, torch_dtype=torch.float32, local_files_only=True
        )
    except (ValueError, KeyError) as err:
        problem = f"model_type {model_type!r} is not supported by transformers' AutoModel ({err})"
        raise EncoderError(Errors.E222.format(path=path / "config.json", problem=problem)) from err
    except OSError as err:
        raise EncoderError(Errors.E205.format(what="weights", path=path, error=err)) from err
    missing = [key for key in info["missing_keys"] if not key.startswith("pooler.")]
    if missing:
        raise EncoderError(Errors.E211.format(path=path, keys=missing[:5]))
    if info["missing_keys"] and getattr(model, "pooler", None) is not None:
        model.pooler = None
    return AutoEncoderModel(model.float()).eval()
