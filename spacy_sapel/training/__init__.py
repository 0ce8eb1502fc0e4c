from . import readers, transformer  # noqa: F401  (registrations)
from .conll import read_iob_docs
from .evaluate import accuracy_at_k
from .jsonl import INPUT_FORMATS, is_jsonl, read_input_docs, read_jsonl_docs, read_text_docs
from .ner_eval import evaluate_pipeline, score_gold_linking, score_joint, score_ner
from .pubtator import PubTatorDoc, PubTatorMention, gold_id_set, read_pubtator
from .pubtator_docs import pubtator_to_docs
from .report import CorpusReport

__all__ = [
    "INPUT_FORMATS",
    "CorpusReport",
    "PubTatorDoc",
    "PubTatorMention",
    "accuracy_at_k",
    "evaluate_pipeline",
    "gold_id_set",
    "is_jsonl",
    "pubtator_to_docs",
    "read_input_docs",
    "read_iob_docs",
    "read_jsonl_docs",
    "read_pubtator",
    "read_text_docs",
    "score_gold_linking",
    "score_joint",
    "score_ner",
]
