"""A tokenizer for biomedical text: spaCy's rules for the language, plus splits where
biomedical corpora put entity boundaries inside what spaCy keeps as one token.

spaCy's English tokenizer keeps "(BHA)-induced", "[3H]nicotine", "thallium-201",
"Na+/K+" and "hepatitis C." (sentence end) as tokens that hold a whole chemical or
disease name and more. An entity that ends inside a token cannot be predicted, and in
training its tokens are a missing value, so the NER never learns it: on BC5CDR 1.4% of
the gold mentions (131 of 9,591 in development, nearly all chemicals) are such, and
0.2% remain with these rules. Splitting finer never loses a mention that aligned
before: a mention that was one token becomes several.

    [nlp.tokenizer]
    @tokenizers = "sapel.BiomedicalTokenizer.v1"

The rules are saved with the pipeline like any tokenizer's (``nlp.to_disk``)."""
from __future__ import annotations

from typing import Callable, List

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_suffix_regex, registry

#: split inside a token, after spaCy's own infixes
INFIXES: List[str] = [
    r"[\(\)\[\]]",  # brackets: "(BHA)-induced", "[3H]nicotine", "Na(v)1.6"
    r"(?<=[\)\]])-(?=\S)",  # a hyphen after a bracket: "(R)-baclofen"
    r"(?<=[A-Za-z])-(?=[0-9])",  # a hyphen before digits: "thallium-201"
    r"(?<=[^\s/])/(?=[^\s/])",  # a slash between anything: "Na+/K+", "5-FU/LV"
    r"(?<=[A-Za-z])\+(?=[A-Za-z/\-])",  # a plus between names or before / or -: "saline+DMSO", "Na+/K+"
]
#: split off the end of a token, after spaCy's own suffixes
SUFFIXES: List[str] = [
    r"(?<=[A-Za-z]{2})-",  # a dangling hyphen: "diazepam- and morphine-induced"
    r"(?<=[A-Za-z])\+",  # a charge after letters: "Na+", "K+"
    r"(?<=^[A-Z])\.",  # a single capital and a full stop: "hepatitis C.", "vitamin D."
]
#: characters the rules above split at
_SPLIT_CHARS = set("()[]/+-")


def _dropped_exception(key: str) -> bool:
    """An emoticon made of characters the rules split at ("8)", "8-D", ":-(", "(-8"):
    spaCy would match it on the pieces of "(5/8)" or "1-deamino-8-D-arginine" and
    glue them back together, across a boundary its own rules make."""
    return bool(_SPLIT_CHARS & set(key)) and sum(c.isalpha() for c in key) <= 1


def add_biomedical_rules(tokenizer: Tokenizer, defaults: type) -> Tokenizer:
    """Make ``tokenizer`` (built from the language's ``defaults``, e.g.
    ``nlp.Defaults``) split as :data:`INFIXES` and :data:`SUFFIXES` say, and drop the
    exceptions that would undo those splits; returns it."""
    tokenizer.infix_finditer = compile_infix_regex([*(defaults.infixes or []), *INFIXES]).finditer
    tokenizer.suffix_search = compile_suffix_regex([*(defaults.suffixes or []), *SUFFIXES]).search
    tokenizer.rules = {key: value for key, value in (tokenizer.rules or {}).items() if not _dropped_exception(key)}
    return tokenizer


@registry.tokenizers("sapel.BiomedicalTokenizer.v1")
def create_biomedical_tokenizer() -> Callable[[Language], Tokenizer]:
    """spaCy's tokenizer for the pipeline's language (``spacy.Tokenizer.v1``) with
    :func:`add_biomedical_rules`."""
    create_default = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def create(nlp: Language) -> Tokenizer:
        return add_biomedical_rules(create_default(nlp), nlp.Defaults)

    return create
