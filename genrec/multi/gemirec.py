"""GemiRec at the scale of these datasets: an interest dictionary shared by all users (IDMM), a posterior
over the user's *next* dictionary interests (MIPDM) and one retrieval per top predicted interest (MIRM).

Every item belongs to one dictionary code: its nearest code by cosine (VQ on unit vectors, the codebook
tracks the item embeddings of its members, dead codes are reset each epoch), or a code fixed beforehand from k-means of the item's
mined deep-interest embeddings (`seed_interests`). A user's interest vector for code m is the code plus an
attention read of the history with the code as query, so K distinct codes give K structurally separate
interests. The posterior is trained on the code of the target item, so it can put mass on a code none of
the history items carries.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from genrec.multi.base import MultiInterestBase, Retrieval, item_loss
from genrec.multi.config import GemiRecConfig


class GemiRec(MultiInterestBase):
    def __init__(self, n_items: int, cfg: GemiRecConfig, item_codes: torch.Tensor | None = None) -> None:
        super().__init__(n_items, cfg)
        d, m = cfg.hidden, cfg.dictionary_size
        self.codebook = nn.Parameter(torch.randn(m, d) * d ** -0.5)
        fixed = item_codes if item_codes is not None else torch.full((n_items,), -1, dtype=torch.int64)
        if fixed.shape != (n_items,) or int(fixed.max()) >= m:
            raise ValueError(f"item_codes must be [{n_items}] codes below dictionary_size={m}")
        self.register_buffer("fixed_codes", fixed.clone())
        self.register_buffer("usage", torch.zeros(m))
        self.posterior_net = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, d))
        self.read_q = nn.Linear(d, d, bias=False)
        self.read_k = nn.Linear(d, d, bias=False)
        self.out = nn.Linear(2 * d, d)

    def codes_of(self, rows: torch.Tensor) -> torch.Tensor:
        """Dictionary code of each item row (1-based): the seeded code, else the nearest code by cosine (a
        Euclidean nearest code favours short codes near the origin)."""
        nearest = (F.normalize(self.item_emb(rows).detach(), dim=-1) @ F.normalize(self.codebook.detach(), dim=-1).T).argmax(-1)
        fixed = self.fixed_codes[rows - 1]
        return torch.where(fixed >= 0, fixed, nearest)

    def code_vectors(self, h: torch.Tensor, mask: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, M] -> [B, M, d]: each code refined by an attention read of the history."""
        c = self.codebook[codes]
        logits = self.read_q(c) @ self.read_k(h).transpose(1, 2) / h.shape[-1] ** 0.5
        attn = torch.softmax(logits.masked_fill(~mask[:, None, :], -1e9), dim=-1)
        return c + self.out(torch.cat([c, attn @ h], dim=-1))

    def posterior(self, interests: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """[B, dictionary_size] logits of the next interest code, from the extracted interests and the last item."""
        query = self.posterior_net(torch.cat([interests.mean(1), h[:, -1]], dim=-1))
        return query @ self.codebook.T

    def loss(self, seq: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        h, mask = self.history(seq)
        interests = self.extractor(h, mask)
        codes = self.codes_of(targets)
        self.usage += torch.bincount(codes, minlength=len(self.usage)).float()
        user = self.code_vectors(h, mask, codes[:, None])[:, 0]
        target_emb, code_emb = F.normalize(self.item_emb(targets), dim=-1), F.normalize(self.codebook[codes], dim=-1)
        dictionary = F.mse_loss(code_emb, target_emb.detach()) + self.cfg.commitment * F.mse_loss(target_emb, code_emb.detach())
        quantise = F.mse_loss(F.normalize(self.select(interests, targets), dim=-1), code_emb.detach())
        return (item_loss(user, targets, self.items, self.cfg, generator)
                + F.cross_entropy(self.posterior(interests, h), codes) + dictionary + quantise)

    @torch.no_grad()
    def end_epoch(self, generator: torch.Generator) -> int:
        """Reset codes no target used this epoch to random item embeddings; returns how many."""
        dead = (self.usage == 0).nonzero().flatten()
        if len(dead):
            rows = torch.randint(0, self.items.shape[0], (len(dead),), generator=generator)
            self.codebook[dead] = self.items[rows]
        self.usage.zero_()
        return len(dead)

    def retrieve(self, seq: torch.Tensor) -> Retrieval:
        h, mask = self.history(seq)
        interests = self.extractor(h, mask)
        k = min(self.cfg.interests, self.codebook.shape[0])
        if self.cfg.generative:
            probs = torch.softmax(self.posterior(interests, h), dim=-1)
        else:  # the ablation: the codes closest to the extracted interests, equally weighted
            probs = (F.normalize(interests, dim=-1) @ F.normalize(self.codebook, dim=-1).T).max(1).values
        weights, codes = probs.topk(k, dim=-1)
        if not self.cfg.generative:
            weights = torch.ones_like(weights)
        vectors = self.code_vectors(h, mask, codes)
        return Retrieval(vectors, weights / weights.sum(1, keepdim=True), vectors @ self.items.T)
