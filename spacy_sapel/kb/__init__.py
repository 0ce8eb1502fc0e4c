"""Knowledge bases: concepts, their names and ids, read from vocabulary files."""
from .ids import concept_index, kb_id_set, normalize_id, split_ids
from .knowledge_base import Concept, KnowledgeBase
from .readers import READERS, get_reader, read_kb

__all__ = [
    "Concept",
    "KnowledgeBase",
    "READERS",
    "concept_index",
    "get_reader",
    "kb_id_set",
    "normalize_id",
    "read_kb",
    "split_ids",
]
