"""The shared base (ComiRec-style) and what every multi-interest model offers the trainer.

A model maps a left-padded history [B, L] of item rows (0 = padding) to a `Retrieval`: K interest vectors,
their weights and per-interest scores over every item. Training picks, per example, the interest closest to
the target item (ComiRec's hard selection) and applies a full (or sampled) softmax over the items with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from genrec.data.tensors import PAD
from genrec.multi.config import MultiModelConfig
from genrec.multi.extractor import build_extractor


@dataclass
class Retrieval:
    """vectors [B, K, d] (what `collapse` measures), weights [B, K] (for the weighted merge), scores [B, K, N]
    over item columns 0..N-1 (= embedding rows 1..N)."""

    vectors: torch.Tensor
    weights: torch.Tensor
    scores: torch.Tensor


def item_loss(user: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, cfg: MultiModelConfig,
              generator: torch.Generator | None, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy of `targets` (item rows, 1-based) under user vectors [B, d].

    `items` is the [N, d] item matrix (row 0 = item row 1). Full softmax scores every item; sampled softmax
    scores the target against `cfg.negatives` shared uniform negatives (accidental hits masked).
    `allowed` [B, N] restricts the full softmax (ULIM's in-category retrieval).
    """
    cols = targets - 1
    if cfg.loss == "full":
        logits = user @ items.T
        if allowed is not None:
            logits = logits.masked_fill(~allowed, -1e9)
        return F.cross_entropy(logits, cols)
    neg = torch.randint(0, items.shape[0], (cfg.negatives,), generator=generator)
    pos_logit = (user * items[cols]).sum(-1, keepdim=True)
    neg_logits = (user @ items[neg].T).masked_fill(neg[None, :] == cols[:, None], -1e9)
    if allowed is not None:
        neg_logits = neg_logits.masked_fill(~allowed[:, neg], -1e9)
    logits = torch.cat([pos_logit, neg_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(cols), dtype=torch.int64))


def pairwise_cosine(vectors: torch.Tensor) -> torch.Tensor:
    """[B, K, d] -> [B] mean cosine over a user's distinct interest pairs (1 for K = 1)."""
    k = vectors.shape[1]
    if k == 1:
        return torch.ones(vectors.shape[0])
    unit = F.normalize(vectors, dim=-1)
    sim = unit @ unit.transpose(1, 2)
    off = ~torch.eye(k, dtype=torch.bool)
    return sim[:, off].mean(1)


class MultiInterestBase(nn.Module):
    """Item embeddings + a multi-interest extractor (self-attentive or dynamic routing)."""

    def __init__(self, n_items: int, cfg: MultiModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=PAD)
        nn.init.normal_(self.item_emb.weight, std=cfg.hidden ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()
        self.dropout = nn.Dropout(cfg.dropout)
        self.extractor = build_extractor(cfg)

    @property
    def items(self) -> torch.Tensor:
        """[N, d] embeddings of the real items."""
        return self.item_emb.weight[1:]

    def history(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded history [B, L, d] (dropout in training, padding zeroed) and its mask [B, L]."""
        mask = seq != PAD
        return self.dropout(self.item_emb(seq)) * mask.unsqueeze(-1), mask

    def interests(self, seq: torch.Tensor) -> torch.Tensor:
        """[B, K, d] extracted interests."""
        h, mask = self.history(seq)
        return self.extractor(h, mask)

    def select(self, interests: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per example, the interest that scores the target highest (chosen without gradient) -> [B, d]."""
        with torch.no_grad():
            best = torch.einsum("bkd,bd->bk", interests, self.item_emb(targets)).argmax(1)
        return interests[torch.arange(len(best)), best]

    def loss(self, seq: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return item_loss(self.select(self.interests(seq), targets), targets, self.items, self.cfg, generator)

    def retrieve(self, seq: torch.Tensor) -> Retrieval:
        """Interests weighted by their norms (a capsule's norm is its confidence), scored against every item."""
        vectors = self.interests(seq)
        norms = vectors.norm(dim=-1)
        return Retrieval(vectors, norms / norms.sum(1, keepdim=True).clamp_min(1e-9), vectors @ self.items.T)
