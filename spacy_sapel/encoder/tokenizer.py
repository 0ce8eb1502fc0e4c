"""The encoder's tokenizer: a Hugging Face ``tokenizers`` tokenizer read from a model
directory's ``tokenizer.json``, or built from its WordPiece ``vocab.txt`` the way
transformers converts a BERT tokenizer, without importing transformers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from ..errors import EncoderError, Errors

TOKENIZER_JSON = "tokenizer.json"
VOCAB_TXT = "vocab.txt"
# files of a Hugging Face tokenizer, copied unchanged when the encoder is saved
TOKENIZER_FILES = (
    TOKENIZER_JSON,
    VOCAB_TXT,
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)
_SPECIALS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
# tokenizer_config.json options of transformers' BertTokenizer(Fast), with defaults
_NORMALIZER_OPTIONS = {
    "do_lower_case": ("lowercase", True),
    "strip_accents": ("strip_accents", None),
    "tokenize_chinese_chars": ("handle_chinese_chars", True),
}


class EncoderTokenizer:
    """Token ids of texts, with the model's special tokens and truncation."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        pad_token_id: int,
        model_max_length: Optional[int],
        files: Dict[str, bytes],
    ) -> None:
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.pad_token_id = pad_token_id
        self.model_max_length = model_max_length
        self.files = dict(files)

    @classmethod
    def from_dir(cls, path: Path) -> "EncoderTokenizer":
        """Read ``tokenizer.json`` (else ``vocab.txt``) and the options in
        ``tokenizer_config.json`` / ``special_tokens_map.json``, as transformers does."""
        files = {
            name: (path / name).read_bytes()
            for name in TOKENIZER_FILES
            if (path / name).is_file()
        }
        options = {
            **_read_json(path, "special_tokens_map.json"),
            **_read_json(path, "tokenizer_config.json"),
        }
        specials = {key: _token_text(options.get(key, default)) for key, default in _SPECIALS.items()}
        try:
            if TOKENIZER_JSON in files:
                tokenizer = Tokenizer.from_str(files[TOKENIZER_JSON].decode("utf8"))
                _apply_normalizer_options(tokenizer, options)
            elif VOCAB_TXT in files:
                tokenizer = _wordpiece(path / VOCAB_TXT, options, specials)
            else:
                raise EncoderError(Errors.E220.format(path=path))
        except EncoderError:
            raise
        except Exception as err:  # tokenizers raises its own exception types
            raise EncoderError(Errors.E205.format(what="tokenizer", path=path, error=err)) from err
        pad_id = tokenizer.token_to_id(specials["pad_token"])
        max_length = options.get("model_max_length")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            max_length = None  # transformers' "no limit" is a huge float
        return cls(
            tokenizer,
            pad_token_id=0 if pad_id is None else pad_id,
            model_max_length=max_length,
            files=files,
        )

    @property
    def num_special_tokens(self) -> int:
        """Special tokens added to each single text ([CLS] and [SEP] for BERT)."""
        processor = self.tokenizer.post_processor
        return 0 if processor is None else processor.num_special_tokens_to_add(False)

    def encode(self, texts: Sequence[str], *, max_length: int) -> List[List[int]]:
        """Token ids of each text, special tokens included, truncated to ``max_length``."""
        if (self.tokenizer.truncation or {}).get("max_length") != max_length:
            self.tokenizer.enable_truncation(max_length)
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def save(self, path: Path) -> None:
        """The tokenizer files of the source directory, unchanged, into ``path``."""
        for name, content in self.files.items():
            (path / name).write_bytes(content)


def _read_json(path: Path, name: str) -> Dict[str, Any]:
    file = path / name
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EncoderError(Errors.E205.format(what="tokenizer", path=file, error=err)) from err
    if not isinstance(data, dict):
        raise EncoderError(
            Errors.E205.format(what="tokenizer", path=file, error="not a JSON object")
        )
    return data


def _token_text(value: Any) -> str:
    """A special token as tokenizer_config.json may write it: a str or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return str(value)


def _normalizer_kwargs(options: Dict[str, Any], base: Dict[str, Any]) -> Dict[str, Any]:
    kwargs = {
        name: options.get(option, base.get(name, default))
        for option, (name, default) in _NORMALIZER_OPTIONS.items()
    }
    return {"clean_text": base.get("clean_text", True), **kwargs}


def _apply_normalizer_options(tokenizer: Tokenizer, options: Dict[str, Any]) -> None:
    """What transformers' BertTokenizerFast does on load: a BERT normalizer whose
    lowercasing, accent stripping or Chinese-character handling differ from the
    options in tokenizer_config.json is rebuilt with those options."""
    state = json.loads(tokenizer.to_str()).get("normalizer") or {}
    if state.get("type") != "BertNormalizer":
        return
    wanted = _normalizer_kwargs(options, state)
    if any(state.get(name) != value for name, value in wanted.items()):
        tokenizer.normalizer = normalizers.BertNormalizer(**wanted)


def _wordpiece(vocab: Path, options: Dict[str, Any], specials: Dict[str, str]) -> Tokenizer:
    """A BERT WordPiece tokenizer from ``vocab.txt``, as transformers' BertConverter
    builds it (normalizer, pre-tokenizer, [CLS] ... [SEP] template)."""
    tokenizer = Tokenizer(models.WordPiece.from_file(str(vocab), unk_token=specials["unk_token"]))
    tokenizer.normalizer = normalizers.BertNormalizer(**_normalizer_kwargs(options, {}))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    in_vocab = [token for token in specials.values() if tokenizer.token_to_id(token) is not None]
    tokenizer.add_special_tokens(in_vocab)
    cls_token, sep_token = specials["cls_token"], specials["sep_token"]
    cls_id, sep_id = tokenizer.token_to_id(cls_token), tokenizer.token_to_id(sep_token)
    if cls_id is None or sep_id is None:
        raise EncoderError(
            Errors.E205.format(
                what="tokenizer",
                path=vocab,
                error=f"{cls_token!r} or {sep_token!r} is not in the vocabulary",
            )
        )
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, cls_id), (sep_token, sep_id)],
    )
    return tokenizer
