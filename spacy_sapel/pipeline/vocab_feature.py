"""``sapel.VocabFeatureTok2Vec.v1``: a tok2vec (a listener of the pipeline's
transformer or tok2vec) whose output gets an embedding of the vocabulary tags of
``sapel_vocab_tagger`` concatenated to it, for the ``ner``."""

from typing import Callable, List, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Embed, Model
from thinc.types import Floats2d

from ..errors import Errors, SapelError
from ..util import check_int_option
from .vocab_tagger import TAGS_ATTR, VOCAB_TAGS, install_vocab_extensions

_TAG_IDS = {tag: i for i, tag in enumerate(VOCAB_TAGS)}


@registry.architectures("sapel.VocabFeatureTok2Vec.v1")
def create_vocab_feature_tok2vec(
    tok2vec: Model[List[Doc], List[Floats2d]], width: int = 16
) -> Model[List[Doc], List[Floats2d]]:
    """``tok2vec``'s vectors with ``width`` more columns: the embedding of each token's
    tag in ``doc._.sapel_vocab_tags`` (O for a doc that no tagger saw, so a pipeline
    without the vocabulary still runs, with the feature off)."""
    check_int_option("width", width)
    install_vocab_extensions()
    embed = Embed(nO=width, nV=len(VOCAB_TAGS))
    n_o = tok2vec.get_dim("nO") + width if tok2vec.has_dim("nO") is True else None
    return Model(
        "vocab_feature_tok2vec",
        _forward,
        init=_init,
        layers=[tok2vec, embed],
        dims={"nO": n_o},
    )


def _init(model: Model, X=None, Y=None) -> Model:
    tok2vec, embed = model.layers
    tok2vec.initialize(X=X)
    embed.initialize()
    if tok2vec.has_dim("nO") is True:
        model.set_dim("nO", tok2vec.get_dim("nO") + embed.get_dim("nO"), force=True)
    return model


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    tok2vec, embed = model.layers
    vectors, backprop_tok2vec = tok2vec(docs, is_train)
    ids = model.ops.asarray1i([i for doc in docs for i in _tag_ids(doc)])
    tag_vectors, backprop_embed = embed(ids, is_train)
    width = vectors[0].shape[1] if vectors else 0
    outputs, start = [], 0
    for vecs in vectors:
        end = start + vecs.shape[0]
        outputs.append(model.ops.xp.hstack((vecs, tag_vectors[start:end])))
        start = end

    def backprop(d_outputs: List[Floats2d]) -> List[Doc]:
        d_vectors = [model.ops.as_contig(d[:, :width]) for d in d_outputs]
        if d_outputs:
            backprop_embed(model.ops.as_contig(model.ops.xp.vstack([d[:, width:] for d in d_outputs])))
        return backprop_tok2vec(d_vectors)

    return outputs, backprop


def _tag_ids(doc: Doc) -> List[int]:
    tags = doc._.get(TAGS_ATTR)
    if tags is None:
        return [0] * len(doc)
    if len(tags) != len(doc):
        raise SapelError(Errors.E344.format(n_tags=len(tags), n_tokens=len(doc), text=doc.text[:50]))
    try:
        return [_TAG_IDS[tag] for tag in tags]
    except KeyError as err:
        raise SapelError(Errors.E345.format(tag=err.args[0], tags=VOCAB_TAGS)) from None
