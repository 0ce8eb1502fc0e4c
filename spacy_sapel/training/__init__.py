from .evaluate import accuracy_at_k
from .jsonl import read_jsonl_docs, read_text_docs
from .pubtator import PubTatorDoc, PubTatorMention, gold_id_set, read_pubtator, split_ids

__all__ = [
    "PubTatorDoc",
    "PubTatorMention",
    "accuracy_at_k",
    "gold_id_set",
    "read_jsonl_docs",
    "read_pubtator",
    "read_text_docs",
    "split_ids",
]
