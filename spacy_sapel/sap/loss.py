"""SapBERT's training objective in plain torch: triplets mined online in each batch
(anchor and positive share a concept, the negative does not, and the negative is not
``margin`` farther from the anchor than the positive), then the multi-similarity loss
(Wang et al., CVPR 2019) over the mined anchor-positive and anchor-negative pairs.

This is what SapBERT runs with pytorch-metric-learning's ``TripletMarginMiner`` and
``MultiSimilarityLoss``; the tests compare the two. Owning these few lines keeps that
package, and scikit-learn with it (which transformers then imports on every
``spacy.load``), out of the install.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from ..errors import Errors, SapelError

TRIPLET_TYPES = ("all", "hard", "semihard", "easy")
Triplets = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def mine_triplets(
    embeddings: torch.Tensor, labels: torch.Tensor, *, margin: float, kind: str = "all"
) -> Triplets:
    """Indices (anchor, positive, negative) of the triplets whose margin
    ``d(a, n) - d(a, p)`` (Euclidean distance of the L2-normalised embeddings) is at
    most ``margin`` ("all"); "hard" keeps those with a margin <= 0, "semihard" those
    with a margin > 0, "easy" those beyond ``margin``."""
    if kind not in TRIPLET_TYPES:
        raise SapelError(Errors.E602.format(name="type_of_triplets", value=kind))
    with torch.no_grad():
        unit = F.normalize(embeddings.float(), dim=-1)
        dist = torch.cdist(unit, unit)
        same = labels[:, None] == labels[None, :]
        positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        anchor, pos, neg = torch.where(positive[:, :, None] & ~same[:, None, :])
        gap = dist[anchor, neg] - dist[anchor, pos]
        if kind == "easy":
            keep = gap > margin
        else:
            keep = gap <= margin
            if kind == "hard":
                keep &= gap <= 0
            elif kind == "semihard":
                keep &= gap > 0
    return anchor[keep], pos[keep], neg[keep]


def multi_similarity_loss(
    embeddings: torch.Tensor,
    triplets: Triplets,
    *,
    alpha: float,
    beta: float,
    base: float,
) -> torch.Tensor:
    """Mean over the batch rows of ``1/alpha * log(1 + sum_p exp(-alpha (s_ip - base)))
    + 1/beta * log(1 + sum_n exp(beta (s_in - base)))``, s the cosine similarity and
    p, n the positives and negatives paired with row i by the mined triplets (rows
    without pairs add 0)."""
    anchor, pos, neg = triplets
    unit = F.normalize(embeddings.float(), dim=-1)
    sim = unit @ unit.T
    pos_mask = torch.zeros_like(sim, dtype=torch.bool)
    neg_mask = torch.zeros_like(sim, dtype=torch.bool)
    pos_mask[anchor, pos] = True
    neg_mask[anchor, neg] = True
    return multi_similarity(sim, pos_mask, neg_mask, alpha=alpha, beta=beta, base=base)


def multi_similarity(
    sim: torch.Tensor,
    pos_mask: torch.Tensor,
    neg_mask: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    base: float,
) -> torch.Tensor:
    """The multi-similarity loss of similarities ``sim`` (rows: anchors, columns: what
    they are compared with), each row's positives and negatives given by the boolean
    masks: :func:`multi_similarity_loss` over a square batch, or a mention against its
    retrieved candidates (:mod:`.retrieval`)."""
    pos_loss = _log_one_plus_sum_exp(alpha * (base - sim), pos_mask) / alpha
    neg_loss = _log_one_plus_sum_exp(beta * (sim - base), neg_mask) / beta
    return (pos_loss + neg_loss).mean()


def _log_one_plus_sum_exp(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log(1 + sum(exp(x[mask])))``, stably (0 for rows without a pair)."""
    x = x.masked_fill(~mask, float("-inf"))
    zeros = torch.zeros((x.shape[0], 1), dtype=x.dtype, device=x.device)
    return torch.logsumexp(torch.cat([x, zeros], dim=1), dim=1)
