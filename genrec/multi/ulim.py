"""ULIM at the scale of these datasets: category-aware dual interests over long histories, a
pointer-generator next-category predictor (PGIN), and item retrieval inside the top predicted categories.

For a category c, the history's items of category c form a subsequence; its long-term interest is an
attention read of the whole subsequence with a query built from c and the user state, its short-term
interest the mean of its `short_len` most recent items; both are fused with c's embedding. PGIN mixes a
generated distribution over all categories with a copy distribution over the categories in the history
(attention over positions, summed per category) through a learned switch p_gen. Training teaches the
predictor the target's category and retrieves the target inside its category (softmax over that
category's items); at inference every top-K category gives one list, ranked inside the category first.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genrec.data.tensors import PAD
from genrec.multi.base import Retrieval, item_loss
from genrec.multi.config import ULIMConfig

OUTSIDE = -1e4  # added to an item's score under a category it is not in: ranked after every in-category item


class ULIM(nn.Module):
    def __init__(self, n_items: int, cfg: ULIMConfig, item_categories: torch.Tensor) -> None:
        """`item_categories` [n_items]: category index 1..C of each item (row order)."""
        super().__init__()
        if item_categories.shape != (n_items,) or int(item_categories.min()) < 1:
            raise ValueError(f"item_categories must be [{n_items}] category indices >= 1")
        self.cfg = cfg
        d = cfg.hidden
        self.n_categories = int(item_categories.max())
        self.register_buffer("row_category", torch.cat([torch.zeros(1, dtype=torch.int64), item_categories]))
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=PAD)
        nn.init.normal_(self.item_emb.weight, std=d ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()
        self.cat_emb = nn.Embedding(self.n_categories + 1, d, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_len, d)
        self.dropout = nn.Dropout(cfg.dropout)
        self.state = nn.Linear(3 * d, d)
        self.generate = nn.Linear(d, d)
        self.copy_q = nn.Linear(d, d, bias=False)
        self.switch = nn.Linear(2 * d, 1)
        self.long_q = nn.Linear(2 * d, d, bias=False)
        self.fuse = nn.Linear(4 * d, d)

    @property
    def items(self) -> torch.Tensor:
        return self.item_emb.weight[1:]

    def encode(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """History embeddings (+ positions) [B, L, d], mask, history categories [B, L], user state [B, d].

        Left-padding columns that are padding for every row are dropped first (positions count from the end,
        so the result is unchanged): with `max_len` 256 most batches are far shorter than the longest user."""
        seq = seq[:, seq.shape[1] - int((seq != PAD).sum(1).max()):]
        mask = seq != PAD
        cats = self.row_category[seq]
        positions = torch.arange(seq.shape[1]) + self.pos.num_embeddings - seq.shape[1]
        h = self.dropout(self.item_emb(seq) + self.pos(positions)) * mask.unsqueeze(-1)
        mean = h.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        state = torch.tanh(self.state(torch.cat([mean, h[:, -1], self.cat_emb(cats[:, -1])], dim=-1)))
        return h, mask, cats, state

    def category_probs(self, h: torch.Tensor, mask: torch.Tensor, cats: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """[B, C] next-category distribution (column c = category c + 1)."""
        generated = torch.softmax(self.generate(state) @ self.cat_emb.weight[1:].T, dim=-1)
        if not self.cfg.pointer:
            return generated
        keys = h + self.cat_emb(cats)
        logits = torch.einsum("bd,bld->bl", self.copy_q(state), keys) / h.shape[-1] ** 0.5
        attn = torch.softmax(logits.masked_fill(~mask, -1e9), dim=-1)
        copied = torch.zeros(len(cats), self.n_categories + 1).scatter_add(1, cats, attn)[:, 1:]
        p_gen = torch.sigmoid(self.switch(torch.cat([state, torch.einsum("bl,bld->bd", attn, keys)], dim=-1)))
        return p_gen * generated + (1 - p_gen) * copied

    def category_interests(self, h: torch.Tensor, mask: torch.Tensor, cats: torch.Tensor, state: torch.Tensor,
                           wanted: torch.Tensor) -> torch.Tensor:
        """wanted [B, M] category indices -> [B, M, d] dual (long + short term) interest in each."""
        member = (cats[:, None, :] == wanted[:, :, None]) & mask[:, None, :]  # [B, M, L]
        ce = self.cat_emb(wanted)
        s = state[:, None, :].expand_as(ce)
        logits = self.long_q(torch.cat([ce, s], dim=-1)) @ h.transpose(1, 2) / h.shape[-1] ** 0.5
        attn = torch.softmax(logits.masked_fill(~member, -1e9), dim=-1) * member.any(-1, keepdim=True)
        recent = member & (member.flip(-1).cumsum(-1).flip(-1) <= self.cfg.short_len)
        short = recent.float() @ h / recent.sum(-1, keepdim=True).clamp_min(1)
        return self.fuse(torch.cat([attn @ h, short, ce, s], dim=-1))

    def loss(self, seq: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        h, mask, cats, state = self.encode(seq)
        target_cat = self.row_category[targets]
        probs = self.category_probs(h, mask, cats, state)
        category = F.nll_loss(torch.log(probs + 1e-9), target_cat - 1)
        user = self.category_interests(h, mask, cats, state, target_cat[:, None])[:, 0]
        allowed = self.row_category[1:][None, :] == target_cat[:, None]
        return item_loss(user, targets, self.items, self.cfg, generator, allowed) + category

    def retrieve(self, seq: torch.Tensor) -> Retrieval:
        h, mask, cats, state = self.encode(seq)
        probs = self.category_probs(h, mask, cats, state)
        weights, top = probs.topk(min(self.cfg.interests, self.n_categories), dim=-1)
        wanted = top + 1
        vectors = self.category_interests(h, mask, cats, state, wanted)
        outside = self.row_category[1:][None, None, :] != wanted[:, :, None]
        scores = vectors @ self.items.T + OUTSIDE * outside
        return Retrieval(vectors, weights / weights.sum(1, keepdim=True), scores)
