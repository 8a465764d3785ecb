"""Multi-interest extractors: a history of item embeddings -> K interest vectors.

`SelfAttentive` is ComiRec-SA (K attention heads over the positions); `DynamicRouting` is the
behaviour-to-interest capsule routing of MIND / ComiRec-DR (one bilinear map per interest capsule, routing
logits refined for a few iterations, squash non-linearity).
"""

from __future__ import annotations

import torch
from torch import nn

from genrec.multi.config import MultiModelConfig


class SelfAttentive(nn.Module):
    """A = softmax_L(W2 tanh(W1 (h + pos))), interests = A h."""

    def __init__(self, hidden: int, interests: int, max_len: int) -> None:
        super().__init__()
        self.pos = nn.Embedding(max_len, hidden)
        self.w1 = nn.Linear(hidden, 4 * hidden, bias=False)
        self.w2 = nn.Linear(4 * hidden, interests, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h [B, L, d], mask [B, L] (True = real item) -> [B, K, d]."""
        positions = torch.arange(h.shape[1], device=h.device) + self.pos.num_embeddings - h.shape[1]
        logits = self.w2(torch.tanh(self.w1(h + self.pos(positions)))).transpose(1, 2)  # [B, K, L]
        attn = torch.softmax(logits.masked_fill(~mask[:, None, :], -1e9), dim=-1)
        return attn @ h


def squash(z: torch.Tensor) -> torch.Tensor:
    """Capsule squash: keeps the direction, maps the norm into [0, 1)."""
    norm2 = (z * z).sum(-1, keepdim=True)
    return norm2 / (1 + norm2) * z / torch.sqrt(norm2 + 1e-9)


class DynamicRouting(nn.Module):
    """B2I routing: u_kl = S_k h_l, c = softmax over interests of the routing logits b, v_k = squash(sum_l c_kl
    u_kl), b += u . v; b starts at zero, the per-interest maps S_k break the symmetry."""

    def __init__(self, hidden: int, interests: int, iters: int) -> None:
        super().__init__()
        self.iters = iters
        self.maps = nn.Parameter(torch.randn(interests, hidden, hidden) * hidden ** -0.5)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h [B, L, d], mask [B, L] -> [B, K, d]."""
        u = torch.einsum("kde,ble->bkld", self.maps, h)  # [B, K, L, d]
        logits = torch.zeros(u.shape[:3], device=h.device)
        keep = mask[:, None, :].float()
        for it in range(self.iters):
            c = torch.softmax(logits, dim=1) * keep
            v = squash((c.unsqueeze(-1) * u).sum(2))
            if it < self.iters - 1:
                logits = logits + (u.detach() * v.detach().unsqueeze(2)).sum(-1)
        return v


def build_extractor(cfg: MultiModelConfig) -> nn.Module:
    if cfg.extractor == "routing":
        return DynamicRouting(cfg.hidden, cfg.interests, cfg.routing_iters)
    return SelfAttentive(cfg.hidden, cfg.interests, cfg.max_len)
