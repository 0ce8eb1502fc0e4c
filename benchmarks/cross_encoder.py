"""Issue 13, part 5: does a context cross-encoder pay on top of the linker's learned
reranker? Measured, not shipped: the figures decide whether it becomes a component.

For each set of ``quality.py`` (NCBI-disease dev against MEDIC 2012, BC5CDR dev Disease
mentions against CTD 2017; each KB holding its training corpus's mentions as aliases and
priors):

1. the training corpus's gold mentions are linked by the default linker (top ``--top-k``);
   each mention whose gold concept is among them is one training group;
2. a copy of the base encoder (all-MiniLM-L6-v2) with a linear head on [CLS] reads
   ``[CLS] left context [ mention ] right context [SEP] concept's canonical name [SEP]``
   and is trained for one pass over ``--train-mentions`` groups with a listwise softmax
   loss (the gold concept against the other candidates). It sees the canonical name
   only, never the alias a training mention added to the KB, nor the candidates' order
   or scores, so it cannot learn to trust the exact match that the mention's own alias
   gives it;
3. the development mentions are linked by the default linker + the learned reranker
   (trained k-fold on the training corpus, as in ``quality.py``), and their top
   candidates are re-ordered by ``rank score + w * cross-encoder logit`` (rank score:
   0 for the first candidate, -1 for the second, ...), for each ``--weights`` value, and
   by the cross-encoder alone.

Prints acc@1, acc@5 and mentions/second (linker, and linker + cross-encoder scoring) per
row, the training time, and how often the cross-encoder alone fixes an error of the
reranker or breaks one of its right answers. Choosing ``w`` on the development rows is
selection on development data: a weight counts only if it helps on both sets.

    python benchmarks/cross_encoder.py --data-dir ../shared/data --cache-dir CACHE

By hand, not CI; one heavy job at a time (about 8 minutes for NCBI-disease and 10 for
BC5CDR on 2 cores with the defaults, KBs and rerankers already in the cache).
"""
from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import spacy
import torch
import typer
from wasabi import msg

from quality import DEFAULT_LINKER, SETS, cached_kb, check_sets, gold_docs, run_linker, trained_reranker
from spacy_sapel.encoder import DEFAULT_ENCODER, SapEncoder
from spacy_sapel.training import accuracy_at_k
from spacy_sapel.training.evaluate import first_hit

# text, mention start and end characters, candidates, gold ids
Linked = Tuple[str, int, int, List[Tuple[str, float]], frozenset]


def link(linker_kb, path: Path, types, top_k: int, reranker=None) -> Tuple[List[Linked], float]:
    """Gold mentions of ``path`` with ids, linked by the default linker (+ ``reranker``),
    and the seconds the linker took."""
    docs, gold = gold_docs(spacy.blank("en"), path, types)
    linked, seconds = run_linker(linker_kb, docs, DEFAULT_LINKER, reranker, top_k=top_k)
    ents = [(doc, ent) for doc in linked for ent in doc.ents]
    out = [
        (doc.text, ent.start_char, ent.end_char, list(ent._.kb_candidates or []), ids)
        for (doc, ent), ids in zip(ents, gold)
        if ids
    ]
    return out, seconds


class CrossEncoder:
    """The base encoder's transformer with a linear head on [CLS]: one logit per
    (mention in context, candidate name) pair."""

    def __init__(self, encoder: SapEncoder, kb, *, max_length: int, context_tokens: int) -> None:
        self.model = copy.deepcopy(encoder.model).cpu()
        self.head = torch.nn.Linear(self.model.config.hidden_size, 1)
        self.encoder = encoder  # its tokenizer and its padding of a batch
        self.tokenizer = encoder.tokenizer.tokenizer
        self.cls = self.tokenizer.token_to_id("[CLS]")
        self.sep = self.tokenizer.token_to_id("[SEP]")
        self.kb = kb
        self.max_length = max_length
        self.context_tokens = context_tokens
        self._names: Dict[str, List[int]] = {}
        self._contexts: Dict[Tuple[str, int, int], List[int]] = {}

    def parameters(self):
        return [*self.model.parameters(), *self.head.parameters()]

    def _ids(self, text: str) -> List[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _pair(self, text: str, start: int, end: int, concept_id: str) -> List[int]:
        key = (text, start, end)
        if key not in self._contexts:
            n = self.context_tokens
            self._contexts[key] = (
                self._ids(text[:start])[-n:] + self._ids("[") + self._ids(text[start:end])[:16]
                + self._ids("]") + self._ids(text[end:])[:n]
            )
        if concept_id not in self._names:
            self._names[concept_id] = self._ids(self.kb[concept_id].canonical_name)[:20]
        name = self._names[concept_id]
        context = self._contexts[key][: self.max_length - len(name) - 3]
        return [self.cls, *context, self.sep, *name, self.sep]

    def logits(self, pairs: Sequence[Tuple[str, int, int, str]]) -> torch.Tensor:
        batch = self.encoder._collate([self._pair(*p) for p in pairs])
        return self.head(self.model(batch["input_ids"], batch["attention_mask"])[:, 0]).squeeze(-1)


def train(ce: CrossEncoder, groups, *, batch: int, lr: float) -> List[float]:
    """One pass over ``groups`` ((pairs, gold position)) with a listwise softmax loss,
    AdamW, 10 % linear warm-up then linear decay. Returns the loss of each step."""
    params = ce.parameters()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = (len(groups) + batch - 1) // batch
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1.0, (i + 1) / warmup) * max(0.0, 1.0 - i / steps)
    )
    ce.model.train()
    losses = []
    for step in range(steps):
        chunk = groups[step * batch : (step + 1) * batch]
        out = ce.logits([p for pairs, _ in chunk for p in pairs])
        loss, offset = out.new_zeros(()), 0
        for pairs, gold in chunk:
            loss = loss - torch.log_softmax(out[offset : offset + len(pairs)], 0)[gold]
            offset += len(pairs)
        loss = loss / len(chunk)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            msg.text(f"  step {step + 1}/{steps}: loss {np.mean(losses[-100:]):.3f}")
    ce.model.eval()
    return losses


def accuracy(linked: List[Linked], scores: List[np.ndarray], kb) -> Tuple[float, float]:
    """acc@1 and acc@5 of each mention's candidates re-ordered by ``scores``."""
    orders = [[cands[i] for i in np.argsort(-score, kind="stable")] for (*_, cands, _), score in zip(linked, scores)]
    acc = accuracy_at_k(orders, [gold for *_, gold in linked], kb, ks=(1, 5))
    return acc[1], acc[5]


def main(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder with the corpora and vocabularies"),
    cache_dir: Optional[Path] = typer.Option(None, help="quality.py's cache of built KBs and rerankers"),
    only: List[str] = typer.Option([], help="Only these sets (by name)"),
    train_mentions: int = typer.Option(2000, help="Training groups (mentions) for the one pass"),
    batch_mentions: int = typer.Option(4, help="Mentions per step (each with its top-k candidates)"),
    top_k: int = typer.Option(5, help="Candidates per mention, in training and reranking"),
    max_length: int = typer.Option(64, help="Word pieces per pair"),
    context_tokens: int = typer.Option(20, help="Word pieces of context on each side of the mention"),
    lr: float = typer.Option(3e-5, help="Peak learning rate"),
    weights: str = typer.Option("0.05,0.1,0.2,0.5,1", help="Comma-separated w of rank + w * logit"),
    seed: int = typer.Option(0),
) -> None:
    # every option checked before a KB is built or a model trained (minutes)
    check_sets(only)
    for name, value, low in (("--train-mentions", train_mentions, 1), ("--batch-mentions", batch_mentions, 1),
                             ("--top-k", top_k, 2), ("--max-length", max_length, 16), ("--context-tokens", context_tokens, 0)):
        if value < low:
            raise typer.BadParameter(f"must be at least {low}, got {value}", param_hint=name)
    if not lr > 0:
        raise typer.BadParameter(f"must be positive, got {lr}", param_hint="--lr")
    try:
        grid = [float(w) for w in weights.split(",") if w.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, got {weights!r}", param_hint="--weights")
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for set_name, (corpus, types, _, _, train_corpus) in SETS.items():
        if only and set_name not in only:
            continue
        random.seed(seed)
        torch.manual_seed(seed)
        linker_kb = cached_kb(data_dir, set_name, DEFAULT_ENCODER, cache_dir)
        reranker = trained_reranker(data_dir, set_name, linker_kb, DEFAULT_LINKER, 5, cache_dir)
        kb = linker_kb.kb
        training, _ = link(linker_kb, data_dir / train_corpus, types, top_k)
        dev, link_seconds = link(linker_kb, data_dir / corpus, types, top_k, reranker=reranker)
        # loaded after seeding, per set: building the model before its weights are read
        # draws from the seeded generator, so the head's initialisation depends on it
        base = SapEncoder.from_pretrained(DEFAULT_ENCODER, device="cpu")
        ce = CrossEncoder(base, kb, max_length=max_length, context_tokens=context_tokens)
        groups = []
        for text, start, end, cands, gold in training:
            rank = first_hit(cands, gold, kb, {})
            if rank is not None and len(cands) > 1:
                groups.append(([(text, start, end, c) for c, _ in cands], rank))
        random.shuffle(groups)
        groups = groups[:train_mentions]
        msg.info(f"{set_name}: training the cross-encoder on {len(groups)} mentions")
        start = time.perf_counter()
        losses = train(ce, groups, batch=batch_mentions, lr=lr)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        with torch.no_grad():
            logits = [ce.logits([(t, s, e, c) for c, _ in cands]).numpy() if cands else np.zeros(0)
                      for t, s, e, cands, _ in dev]
        ce_seconds = time.perf_counter() - start
        ranks = [-np.arange(len(cands), dtype=float) for *_, cands, _ in dev]
        n = len(dev)
        linker_rate = f"{n / link_seconds:.0f}"
        both_rate = f"{n / (link_seconds + ce_seconds):.1f}"
        acc = accuracy(dev, ranks, kb)
        rows.append((set_name, "linker + reranker", f"{acc[0]:.3f}", f"{acc[1]:.3f}", linker_rate))
        acc = accuracy(dev, logits, kb)
        rows.append((set_name, "cross-encoder alone", f"{acc[0]:.3f}", f"{acc[1]:.3f}", both_rate))
        for w in grid:
            acc = accuracy(dev, [r + w * z for r, z in zip(ranks, logits)], kb)
            rows.append((set_name, f"+ cross-encoder, w={w:g}", f"{acc[0]:.3f}", f"{acc[1]:.3f}", both_rate))
        right = [first_hit(cands, gold, kb, {}) == 0 for *_, cands, gold in dev]
        ce_right = [bool(len(z)) and first_hit([cands[int(np.argmax(z))]], gold, kb, {}) == 0
                    for (*_, cands, gold), z in zip(dev, logits)]
        msg.info(
            f"{set_name}: the cross-encoder alone puts the right concept first for "
            f"{sum(c for r, c in zip(right, ce_right) if not r)} of the reranker's {right.count(False)} errors, "
            f"and a wrong one for {sum(not c for r, c in zip(right, ce_right) if r)} of its {right.count(True)} right answers"
        )
        msg.info(
            f"{set_name}: {len(losses)} steps in {train_seconds / 60:.1f} min (loss {np.mean(losses[:50]):.3f} "
            f"→ {np.mean(losses[-50:]):.3f}); {n} development mentions scored in {ce_seconds:.0f}s"
        )
    msg.table(rows, header=("set", "ranking", "acc@1", "acc@5", "mentions/s"), divider=True)


if __name__ == "__main__":
    typer.run(main)
