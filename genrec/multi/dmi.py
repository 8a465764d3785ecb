"""DMI at the scale of these datasets: the shared base's coarse interests refined by a conditional denoiser.

Training noises the interest selected for the target at a random level t <= `start_step` of a cosine schedule
(the controllable noise: refinement never starts from pure noise), on a random subset of its dimensions (dimension-level, controllable noise), and denoises it in one step with
cross-attention over the history items the interest is closest to (item pruning: the `prune_keep` most
similar); both the coarse and the denoised interest are trained to retrieve the target, and the denoised one to stay
near its coarse interest (`reconstruction`), so refinement sharpens each interest instead of replacing
all K by one user vector. Inference starts
each coarse interest at level `start_step` and runs `steps` deterministic DDIM steps down to 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genrec.multi.base import MultiInterestBase, Retrieval, item_loss
from genrec.multi.config import DMIConfig


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """[timesteps + 1] cumulative signal level, 1 at t = 0 (Nichol & Dhariwal's cosine schedule)."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0]).clamp(1e-4, 1.0).float()


class DMI(MultiInterestBase):
    def __init__(self, n_items: int, cfg: DMIConfig) -> None:
        super().__init__(n_items, cfg)
        d = cfg.hidden
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.timesteps))
        self.time = nn.Embedding(cfg.timesteps + 1, d)
        self.attn = nn.MultiheadAttention(d, 1, batch_first=True)
        self.out = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, d))

    def denoise(self, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, M, d] at levels t [B, M] -> predicted clean interests [B, M, d]."""
        b, m, d = x.shape
        te = self.time(t)
        sim = torch.einsum("bmd,bld->bml", x, h).masked_fill(~mask[:, None, :], float("-inf"))
        keep = torch.zeros_like(sim, dtype=torch.bool).scatter(-1, sim.topk(min(self.cfg.prune_keep, h.shape[1]), -1).indices, True)
        keep &= mask[:, None, :]
        keys = h[:, None].expand(b, m, *h.shape[1:]).reshape(b * m, h.shape[1], d)
        ctx, _ = self.attn((x + te).reshape(b * m, 1, d), keys, keys, key_padding_mask=~keep.reshape(b * m, -1),
                           need_weights=False)
        scaled = x / self.alpha_bar[t].sqrt().unsqueeze(-1)  # the interest the noisy x estimates, plus noise
        return scaled + self.out(torch.cat([x, ctx.reshape(b, m, d), te], dim=-1))

    def loss(self, seq: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        h, mask = self.history(seq)
        coarse = self.select(self.extractor(h, mask), targets)
        b, d = coarse.shape
        t = torch.randint(1, self.cfg.start_step + 1, (b,), generator=generator)  # the levels inference starts from
        dims = torch.rand(b, d, generator=generator) < self.cfg.noise_dims
        noise = torch.randn(b, d, generator=generator) * dims
        ab = self.alpha_bar[t][:, None]
        noisy = ab.sqrt() * coarse + (1 - ab).sqrt() * noise
        refined = self.denoise(noisy[:, None], t[:, None], h, mask)[:, 0]
        reconstruction = ((refined - coarse.detach()) ** 2).sum(-1).mean()
        return (item_loss(coarse, targets, self.items, self.cfg, generator)
                + item_loss(refined, targets, self.items, self.cfg, generator) + self.cfg.reconstruction * reconstruction)

    def refine(self, coarse: torch.Tensor, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM from level `start_step` to 0 in `steps` steps."""
        levels = torch.linspace(self.cfg.start_step, 0, self.cfg.steps + 1).round().long().tolist()
        x = self.alpha_bar[levels[0]].sqrt() * coarse  # deterministic start (no noise), as in SDEdit/DDIM
        clean = coarse
        for t, t_next in zip(levels[:-1], levels[1:], strict=True):
            if t == t_next:
                continue
            ab, ab_next = self.alpha_bar[t], self.alpha_bar[t_next]
            clean = self.denoise(x, torch.full(x.shape[:2], t), h, mask)
            eps = (x - ab.sqrt() * clean) / (1 - ab).sqrt()
            x = ab_next.sqrt() * clean + (1 - ab_next).sqrt() * eps
        return clean

    def retrieve(self, seq: torch.Tensor) -> Retrieval:
        h, mask = self.history(seq)
        vectors = self.refine(self.extractor(h, mask), h, mask)
        norms = vectors.norm(dim=-1)
        return Retrieval(vectors, norms / norms.sum(1, keepdim=True).clamp_min(1e-9), vectors @ self.items.T)
