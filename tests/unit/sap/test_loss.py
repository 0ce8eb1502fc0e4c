"""SAP's miner and multi-similarity loss: by hand on a tiny batch, and against
pytorch-metric-learning's TripletMarginMiner and MultiSimilarityLoss (SapBERT's)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spacy_sapel.sap.loss import TRIPLET_TYPES, mine_triplets, multi_similarity_loss


def batch(n_pairs: int = 16, dim: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    embeddings = F.normalize(torch.randn(2 * n_pairs, dim, generator=gen), dim=-1)
    labels = torch.randint(0, n_pairs // 2, (n_pairs,), generator=gen).repeat(2)
    return embeddings.requires_grad_(), labels


def test_by_hand():
    # rows 0 and 1 share a concept; row 2 is another concept
    e = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]])
    labels = torch.tensor([0, 0, 1])
    a, p, n = mine_triplets(e, labels, margin=0.2)
    # d(0,1) = 0.894, d(0,2) = 0.632: violated for anchor 0; anchor 1: d(1,0) = 0.894,
    # d(1,2) = 0.283: violated too
    assert sorted(zip(a.tolist(), p.tolist(), n.tolist())) == [(0, 1, 2), (1, 0, 2)]
    loss = multi_similarity_loss(e, (a, p, n), alpha=1.0, beta=60.0, base=0.5)
    s01, s02, s12 = 0.6, 0.8, 0.96
    rows = [
        math.log1p(math.exp(-(s01 - 0.5))) + math.log1p(math.exp(60 * (s02 - 0.5))) / 60,
        math.log1p(math.exp(-(s01 - 0.5))) + math.log1p(math.exp(60 * (s12 - 0.5))) / 60,
        0.0,
    ]
    assert loss.item() == pytest.approx(sum(rows) / 3, rel=1e-5)


def test_no_triplets_in_a_batch_of_one_concept():
    e, _ = batch()
    a, p, n = mine_triplets(e, torch.zeros(len(e), dtype=torch.long), margin=0.2)
    assert len(a) == len(p) == len(n) == 0


@pytest.mark.parametrize("kind", TRIPLET_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pytorch_metric_learning(kind, seed):
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import losses, miners

    e, labels = batch(seed=seed)
    ours = mine_triplets(e, labels, margin=0.2, kind=kind)
    theirs = miners.TripletMarginMiner(margin=0.2, type_of_triplets=kind)(e, labels)
    as_set = lambda t: set(zip(*(x.tolist() for x in t)))  # noqa: E731
    assert as_set(ours) == as_set(theirs)
    assert len(ours[0]) > 1  # (pml returns a zero loss for a single triplet)
    loss = multi_similarity_loss(e, ours, alpha=1.0, beta=60.0, base=0.5)
    expected = losses.MultiSimilarityLoss(alpha=1.0, beta=60.0, base=0.5)(e, labels, theirs)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(loss, e)
    (expected_grad,) = torch.autograd.grad(expected, e)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)


def test_unknown_triplet_type():
    e, labels = batch()
    with pytest.raises(ValueError, match="type_of_triplets='most'"):
        mine_triplets(e, labels, margin=0.2, kind="most")
