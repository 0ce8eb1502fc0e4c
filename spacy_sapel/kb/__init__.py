"""Knowledge bases: concepts, their names and ids, read from vocabulary files."""
from .knowledge_base import Concept, KnowledgeBase
from .readers import READERS, get_reader, read_kb

__all__ = ["Concept", "KnowledgeBase", "READERS", "get_reader", "read_kb"]
