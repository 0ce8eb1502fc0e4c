"""The ``sapel_vocab_tagger`` component: marks the tokens covered by a vocabulary name
(longest match, case-insensitive) with BILUO tags, a feature for the ``ner``
(``sapel.VocabFeatureTok2Vec.v1``). Names come in at ``initialize`` through a
registered loader and are saved with the pipeline; without names every tag is O."""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Token
from spacy.training import Example, validate_get_examples
from spacy.util import SimpleFrozenList, from_bytes, from_disk, registry, to_bytes, to_disk

from ..errors import Errors, SapelError
from ..kb import KnowledgeBase
from ..kb.readers import read_kb
from ..util import atomic_write_bytes, json_dumps, write_json

# the tags, in the order of their ids in the feature embedding (O = 0: no name)
VOCAB_TAGS = ("O", "B", "I", "L", "U")
TAGS_ATTR = "sapel_vocab_tags"
TAG_ATTR = "sapel_vocab_tag"
Phrase = Tuple[str, ...]
_END = None  # the key that marks a complete phrase in the trie


def install_vocab_extensions() -> None:
    """``Doc._.sapel_vocab_tags`` (one tag per token, stored with the doc: it survives
    ``Doc.to_bytes`` and ``DocBin(store_user_data=True)``) and ``Token._.sapel_vocab_tag``
    (read-only view, "O" when the doc was not tagged). Idempotent."""
    if not Doc.has_extension(TAGS_ATTR):
        Doc.set_extension(TAGS_ATTR, default=None)
    if not Token.has_extension(TAG_ATTR):
        Token.set_extension(TAG_ATTR, getter=_token_tag)


def _token_tag(token: Token) -> str:
    tags = token.doc._.get(TAGS_ATTR)
    return "O" if tags is None else tags[token.i]


@Language.factory(
    "sapel_vocab_tagger",
    assigns=[f"doc._.{TAGS_ATTR}"],
    default_config={},
)
def make_vocab_tagger(nlp: Language, name: str) -> "VocabTagger":
    return VocabTagger(nlp, name)


class VocabTagger(Pipe):
    """Set ``doc._.sapel_vocab_tags``: B/I/L for the first/inner/last token of a
    vocabulary name, U for a one-token name, O elsewhere. At each token the longest
    name starting there wins, left to right; token texts are compared lower-cased.
    Names are tokenized with the pipeline's tokenizer, so a name matches the tokens
    the text gets."""

    def __init__(self, nlp: Language, name: str = "sapel_vocab_tagger") -> None:
        self.vocab = nlp.vocab
        self.name = name
        self._tokenizer = nlp.tokenizer
        self.phrases: List[Phrase] = []
        self._trie: Dict[Any, Any] = {}
        install_vocab_extensions()

    # --- set-up -------------------------------------------------------------------
    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        names_loader: Optional[Callable[[], Iterable[str]]] = None,
    ) -> None:
        """Load the names through ``names_loader`` (e.g. ``sapel.vocab_names_from_kb_dir.v1``,
        named in ``[initialize.components]``); without one the tagger keeps its names."""
        if get_examples is not None:
            validate_get_examples(get_examples, "VocabTagger.initialize")
        if names_loader is not None:
            if not callable(names_loader):
                raise SapelError(Errors.E340.format(name=self.name, value=names_loader))
            self.set_names(names_loader())

    def set_names(self, names: Iterable[str]) -> None:
        """Replace the vocabulary: each name is tokenized and lower-cased; blank names
        are skipped. An empty vocabulary turns the feature off (all tags O)."""
        if isinstance(names, str):
            raise SapelError(Errors.E341.format(name=self.name, value=names[:50]))
        texts = []
        for text in names:
            if not isinstance(text, str):
                raise SapelError(Errors.E341.format(name=self.name, value=text))
            if text.strip():
                texts.append(text)
        phrases = {
            tuple(t.lower_ for t in doc if not t.is_space)
            for doc in self._tokenizer.pipe(texts)
        }
        self._set_phrases(sorted(p for p in phrases if p))

    def _set_phrases(self, phrases: List[Phrase]) -> None:
        trie: Dict[Any, Any] = {}
        for phrase in phrases:
            node = trie
            for word in phrase:
                node = node.setdefault(word, {})
            node[_END] = True
        self.phrases = phrases
        self._trie = trie

    # --- prediction ---------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        doc._.set(TAGS_ATTR, self.tags(doc))
        return doc

    def tags(self, doc: Doc) -> List[str]:
        """The BILUO tags of the doc's tokens (longest match, left to right)."""
        words = [t.lower_ for t in doc]
        tags = ["O"] * len(words)
        trie = self._trie
        i = 0
        while i < len(words):
            end, node, j = -1, trie, i
            while j < len(words) and words[j] in node:
                node = node[words[j]]
                j += 1
                if _END in node:
                    end = j
            if end < 0:
                i += 1
                continue
            if end - i == 1:
                tags[i] = "U"
            else:
                tags[i] = "B"
                tags[i + 1 : end - 1] = ["I"] * (end - i - 2)
                tags[end - 1] = "L"
            i = end
        return tags

    # --- serialization ------------------------------------------------------------
    def to_disk(self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()) -> None:
        """``cfg`` (the number of names, for reference) and ``phrases`` (the tokenized
        names: loading needs no tokenizer run)."""
        serialize = {
            "cfg": lambda p: write_json(p, {"n_phrases": len(self.phrases)}),
            "phrases": lambda p: atomic_write_bytes(p, srsly.msgpack_dumps(self.phrases)),
        }
        to_disk(path, serialize, exclude)

    def from_disk(self, path: Path, *, exclude: Iterable[str] = SimpleFrozenList()) -> "VocabTagger":
        """Load the names; a directory without ``phrases`` (saved with it excluded)
        leaves the tagger as it is."""

        def load(p: Path) -> None:
            if Path(p).exists():
                self._set_phrases(_read_phrases(Path(p).read_bytes(), source=p))

        from_disk(path, {"phrases": load}, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        serialize = {
            "cfg": lambda: json_dumps({"n_phrases": len(self.phrases)}),
            "phrases": lambda: srsly.msgpack_dumps(self.phrases),
        }
        return to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()) -> "VocabTagger":
        deserialize = {
            "phrases": lambda b: self._set_phrases(_read_phrases(b, source="bytes"))
        }
        from_bytes(bytes_data, deserialize, exclude)
        return self


def _read_phrases(raw: bytes, *, source: Any) -> List[Phrase]:
    """The phrase list of ``to_disk``/``to_bytes``; E342 for anything else."""
    try:
        data = srsly.msgpack_loads(raw)
    except Exception:  # msgpack raises several types for bad input
        data = None
    if not isinstance(data, list) or not all(
        isinstance(p, (list, tuple)) and all(isinstance(w, str) for w in p) for p in data
    ):
        raise SapelError(Errors.E342.format(path=source))
    return [tuple(p) for p in data]


# --- loaders --------------------------------------------------------------------------
def _kb_names(kb: KnowledgeBase, types: Sequence[str]) -> List[str]:
    wanted = set(types)
    return [
        name
        for concept in kb
        if not wanted or wanted.intersection(concept.types)
        for name in concept.names()
    ]


@registry.misc("sapel.vocab_names_from_kb_dir.v1")
def create_kb_dir_names_loader(path: Path, types: List[str] = []) -> Callable[[], List[str]]:
    """``sapel.vocab_names_from_kb_dir.v1``: the names of a KB directory written by
    ``build-kb`` (or of its ``kb/`` folder alone; the encoder and index are not
    read), of the concepts with one of ``types`` (all when empty)."""

    def load() -> List[str]:
        root = Path(path)
        kb_path = root / "kb" if (root / "kb").is_dir() else root
        if not kb_path.is_dir():
            raise SapelError(Errors.E343.format(path=root))
        return _kb_names(KnowledgeBase.from_disk(kb_path), types)

    return load


@registry.misc("sapel.vocab_names_from_reader.v1")
def create_reader_names_loader(
    paths: Any, reader: str, reader_options: Dict[str, Any] = {}, types: List[str] = []
) -> Callable[[], List[str]]:
    """``sapel.vocab_names_from_reader.v1``: the names read from vocabulary files with
    a named KB reader (``nemo_index``, ``ctd``, ``obo``, ...), as ``build-kb`` reads them."""

    def load() -> List[str]:
        return _kb_names(read_kb(paths, reader, **dict(reader_options)), types)

    return load
