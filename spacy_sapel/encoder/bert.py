"""A BERT encoder in plain torch that reads and writes Hugging Face BERT checkpoints
(``config.json`` plus safetensors or ``pytorch_model.bin``).

The linker needs only the forward pass of a BERT-family encoder (BERT, MiniLM,
SapBERT, PubMedBERT, BioBERT, ...). Importing ``transformers`` for it costs several
seconds (it pulls torch's compiler stack and, when installed, scikit-learn), more than
loading a whole pipeline with a million-name KB; this module avoids that import. The
parameter names are those of ``transformers.BertModel``, so checkpoints load and save
in both directions and the tests compare the two forward passes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EncoderError, Errors

SUPPORTED_MODEL_TYPES = ("bert",)
# transformers.BertConfig's defaults, filled in for keys a config.json leaves out (as
# transformers does), so that a config reads the same here and there.
BERT_DEFAULTS: Dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "use_cache": True,
    "classifier_dropout": None,
}
_POSITIVE_INTS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_ACTIVATIONS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}
# The pooler head is not used by CLS or mean pooling: its weights are carried through
# unchanged (saved again, part of the fingerprint) but not computed.
PASSTHROUGH_PREFIX = "pooler."
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
#: Weights files, each with the index of its sharded form, in the order they are looked for.
WEIGHT_FILES = ((SAFETENSORS, SAFETENSORS_INDEX), (TORCH_BIN, TORCH_BIN_INDEX))


class BertSettings:
    """The checked content of a BERT ``config.json``: every key kept (so it is saved
    and fingerprinted as read), transformers' defaults filled in."""

    def __init__(self, values: Dict[str, Any]) -> None:
        self.values = dict(values)

    @classmethod
    def from_dict(cls, raw: Any, *, source: Any = "config") -> "BertSettings":
        if not isinstance(raw, dict):
            raise EncoderError(Errors.E222.format(path=source, problem="not a JSON object"))
        values = {**BERT_DEFAULTS, **raw}
        model_type = values.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            problem = f"model_type {model_type!r} is not supported"
            raise EncoderError(Errors.E222.format(path=source, problem=problem))
        for key in _POSITIVE_INTS:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problem = f"{key!r} is {value!r}, expected a positive integer"
                raise EncoderError(Errors.E222.format(path=source, problem=problem))
        if values["hidden_size"] % values["num_attention_heads"]:
            problem = (
                f"hidden_size {values['hidden_size']} is not a multiple of "
                f"num_attention_heads {values['num_attention_heads']}"
            )
            raise EncoderError(Errors.E222.format(path=source, problem=problem))
        if values["hidden_act"] not in _ACTIVATIONS:
            problem = (
                f"hidden_act {values['hidden_act']!r} is not supported, expected one of "
                f"{sorted(_ACTIVATIONS)}"
            )
            raise EncoderError(Errors.E222.format(path=source, problem=problem))
        if values["position_embedding_type"] != "absolute":
            problem = (
                f"position_embedding_type {values['position_embedding_type']!r} is not "
                "supported, expected 'absolute'"
            )
            raise EncoderError(Errors.E222.format(path=source, problem=problem))
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "layer_norm_eps"):
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problem = f"{key!r} is {value!r}, expected a non-negative number"
                raise EncoderError(Errors.E222.format(path=source, problem=problem))
        return cls(values)

    @classmethod
    def from_file(cls, path: Path) -> "BertSettings":
        try:
            raw = json.loads(path.read_text(encoding="utf8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise EncoderError(Errors.E222.format(path=path, problem=err)) from err
        return cls.from_dict(raw, source=path)

    def __getattr__(self, key: str) -> Any:
        # config.hidden_size and friends, like a transformers config
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(key)

    def to_json(self) -> str:
        """``config.json`` as transformers reads it back (a ``BertModel``)."""
        values = {**self.values, "architectures": ["BertModel"], "torch_dtype": "float32"}
        return json.dumps(values, indent=2, sort_keys=True)


class BertLayer(nn.Module):
    """One transformer block; submodule names follow ``transformers.BertLayer``."""

    def __init__(self, cfg: BertSettings) -> None:
        super().__init__()
        hidden, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.n_heads = cfg.num_attention_heads
        self.attention_dropout = float(cfg.attention_probs_dropout_prob)
        self.activation = _ACTIVATIONS[cfg.hidden_act]
        self.attention = nn.ModuleDict(
            {
                "self": nn.ModuleDict(
                    {name: nn.Linear(hidden, hidden) for name in ("query", "key", "value")}
                ),
                "output": _dense_norm(hidden, hidden, eps),
            }
        )
        self.intermediate = nn.ModuleDict({"dense": nn.Linear(hidden, cfg.intermediate_size)})
        self.output = _dense_norm(cfg.intermediate_size, hidden, eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, width, hidden = x.shape
        heads = [
            layer(x).view(n, width, self.n_heads, -1).transpose(1, 2)
            for layer in self.attention["self"].values()
        ]
        context = F.scaled_dot_product_attention(
            *heads,
            attn_mask=bias,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        context = context.transpose(1, 2).reshape(n, width, hidden)
        out = self.attention["output"]
        x = out["LayerNorm"](x + self.dropout(out["dense"](context)))
        inner = self.activation(self.intermediate["dense"](x))
        return self.output["LayerNorm"](x + self.dropout(self.output["dense"](inner)))


class BertEncoderModel(nn.Module):
    """BERT without heads: token ids and attention mask in, last hidden states out."""

    def __init__(self, cfg: BertSettings) -> None:
        super().__init__()
        self.config = cfg
        hidden = cfg.hidden_size
        self.embeddings = nn.ModuleDict(
            {
                "word_embeddings": nn.Embedding(cfg.vocab_size, hidden),
                "position_embeddings": nn.Embedding(cfg.max_position_embeddings, hidden),
                "token_type_embeddings": nn.Embedding(cfg.type_vocab_size, hidden),
                "LayerNorm": nn.LayerNorm(hidden, eps=cfg.layer_norm_eps),
            }
        )
        self.encoder = nn.ModuleDict(
            {"layer": nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))}
        )
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        # weights of unused heads, kept to be saved again unchanged
        self.passthrough: Dict[str, torch.Tensor] = {}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        emb = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = (
            emb["word_embeddings"](input_ids)
            + emb["position_embeddings"](positions)[None]
            # single-segment input: every token has type 0
            + emb["token_type_embeddings"].weight[0]
        )
        x = self.dropout(emb["LayerNorm"](x))
        # additive mask: 0 where attended, the dtype's minimum on padding
        keep = attention_mask[:, None, None, :].to(x.dtype)
        bias = (1.0 - keep) * torch.finfo(x.dtype).min
        for layer in self.encoder["layer"]:
            x = layer(x, bias)
        return x

    def tensors(self) -> Dict[str, torch.Tensor]:
        """Everything a checkpoint of this model holds: parameters and passthrough."""
        return {**self.state_dict(), **self.passthrough}

    def save(self, path: Path) -> None:
        """``config.json`` and ``model.safetensors`` into the directory ``path``."""
        from safetensors.torch import save_file

        (path / "config.json").write_text(self.config.to_json(), encoding="utf8")
        tensors = {
            key: tensor.detach().cpu().contiguous() for key, tensor in self.tensors().items()
        }
        save_file(tensors, str(path / SAFETENSORS), metadata={"format": "pt"})


def _dense_norm(n_in: int, n_out: int, eps: float) -> nn.ModuleDict:
    return nn.ModuleDict({"dense": nn.Linear(n_in, n_out), "LayerNorm": nn.LayerNorm(n_out, eps=eps)})


def load_bert(path: Path) -> BertEncoderModel:
    """The float32 model of a Hugging Face BERT directory, with errors that name the
    directory and what does not fit."""
    cfg = BertSettings.from_file(path / "config.json")
    model = BertEncoderModel(cfg)
    tensors = _rename(read_checkpoint(path))
    own = model.state_dict()
    missing = [key for key in own if key not in tensors]
    if missing:
        raise EncoderError(Errors.E211.format(path=path, keys=missing[:5]))
    wrong = [
        f"{key}: {tuple(tensors[key].shape)} for {tuple(value.shape)}"
        for key, value in own.items()
        if tuple(tensors[key].shape) != tuple(value.shape)
    ]
    if wrong:
        raise EncoderError(Errors.E223.format(path=path, shapes=wrong[:5]))
    model.load_state_dict({key: tensors[key].float() for key in own})
    model.passthrough = {
        key: value.float() if value.is_floating_point() else value
        for key, value in tensors.items()
        if key.startswith(PASSTHROUGH_PREFIX)
    }
    return model.eval()


def read_checkpoint(path: Path) -> Dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory: safetensors or torch pickles (weights
    only), single-file or sharded with an index."""
    try:
        return {
            key: value for file in _weight_files(path) for key, value in _read_file(file).items()
        }
    except EncoderError:
        raise
    except Exception as err:  # safetensors and torch raise many types on bad files
        raise EncoderError(Errors.E205.format(what="weights", path=path, error=err)) from err


def _weight_files(path: Path) -> List[Path]:
    for single, index in WEIGHT_FILES:
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            weight_map = json.loads((path / index).read_text(encoding="utf8"))["weight_map"]
            return [path / name for name in sorted(set(weight_map.values()))]
    raise EncoderError(Errors.E204.format(path=path))


def _read_file(file: Path) -> Dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    return torch.load(str(file), map_location="cpu", weights_only=True)


def _rename(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Checkpoint keys as ``BertModel`` names them: the ``bert.`` prefix of models saved
    with a head removed, TF-era ``gamma``/``beta`` LayerNorm names mapped."""
    prefix = "bert."
    if any(key.startswith(prefix) for key in tensors) and not any(
        key.startswith("embeddings.") for key in tensors
    ):
        tensors = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    renamed = {}
    for key, value in tensors.items():
        if key.endswith("LayerNorm.gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith("LayerNorm.beta"):
            key = key[: -len("beta")] + "bias"
        renamed[key] = value
    return renamed

