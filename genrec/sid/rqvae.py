"""RQ-VAE (TIGER): MLP encoder -> residual vector quantisation over L codebooks -> MLP decoder.

Training loss = reconstruction MSE + sum over levels of ||sg(r) - e||^2 + beta ||r - sg(e)||^2 (codebook and
commitment terms), with a straight-through estimator. Codebooks start from k-means on all items' residuals
and codes that no item chose after an epoch are moved onto random residuals (dead-code reset; not after the
last epoch, so the reported utilisation is that of trained codes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genrec.sid.config import RQVAEConfig
from genrec.sid.kmeans import kmeans_centroids
from genrec.sid.quantized import Quantized


def mlp(widths: list[int], dropout: float) -> nn.Sequential:
    """Linear layers with ReLU (and dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class ResidualQuantizer(nn.Module):
    """L codebooks of K vectors; level l quantises what levels < l left over."""

    def __init__(self, levels: int, size: int, dim: int) -> None:
        super().__init__()
        self.codebooks = nn.ParameterList([nn.Parameter(torch.randn(size, dim) * 0.1) for _ in range(levels)])

    def forward(self, z: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Returns (straight-through quantised z, codes [B, L], vq loss, residual entering each level)."""
        residual = z
        quantised = torch.zeros_like(z)
        codes, inputs = [], []
        loss = z.new_zeros(())
        for book in self.codebooks:
            inputs.append(residual)
            idx = torch.cdist(residual.detach(), book.detach()).argmin(1)
            chosen = book[idx]
            loss = loss + ((residual.detach() - chosen) ** 2).mean() + beta * ((residual - chosen.detach()) ** 2).mean()
            quantised = quantised + chosen
            residual = residual - chosen.detach()
            codes.append(idx)
        return z + (quantised - z).detach(), torch.stack(codes, 1), loss, inputs


class RQVAE(nn.Module):
    """Encoder, residual quantiser, decoder (mirror of the encoder).

    Inputs are centred and divided by one global scale (buffers fitted on the items), so the reconstruction
    loss is O(1) whatever the embedding's norm; the reconstruction is returned in the input's units.
    """

    def __init__(self, input_dim: int, cfg: RQVAEConfig, levels: int, size: int) -> None:
        super().__init__()
        widths = [input_dim, *cfg.hidden, cfg.latent_dim]
        self.encoder = mlp(widths, cfg.dropout)
        self.decoder = mlp(widths[::-1], cfg.dropout)
        self.quantizer = ResidualQuantizer(levels, size, cfg.latent_dim)
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_scale", torch.ones(()))

    def fit_input_scale(self, x: torch.Tensor) -> None:
        self.input_mean.copy_(x.mean(0))
        self.input_scale.copy_((x - x.mean(0)).pow(2).mean().sqrt().clamp_min(1e-8))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.input_mean) / self.input_scale)

    def forward(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(reconstruction, codes, vq loss, per-level residuals)."""
        z_q, codes, vq_loss, residuals = self.quantizer(self.encode(x), beta)
        return self.decoder(z_q) * self.input_scale + self.input_mean, codes, vq_loss, residuals


@torch.no_grad()
def kmeans_init(model: RQVAE, x: torch.Tensor, seed: int) -> None:
    """Set each codebook to k-means centroids of all items' residuals at that level."""
    residual = model.encode(x)
    for level, book in enumerate(model.quantizer.codebooks):
        centroids = torch.from_numpy(kmeans_centroids(residual.numpy(), book.shape[0], seed + level))
        book.copy_(centroids)
        residual = residual - centroids[torch.cdist(residual, centroids).argmin(1)]


@torch.no_grad()
def reset_dead_codes(model: RQVAE, x: torch.Tensor, generator: torch.Generator) -> list[int]:
    """Move every code that no item uses onto the residual of a random item at its level; returns the
    number reset per level. Levels are visited in order so a reset at level l is seen by level l+1."""
    residual = model.encode(x)
    reset = []
    for book in model.quantizer.codebooks:
        idx = torch.cdist(residual, book).argmin(1)
        dead = (torch.bincount(idx, minlength=book.shape[0]) == 0).nonzero().flatten()
        if len(dead):
            book[dead] = residual[torch.randint(0, len(x), (len(dead),), generator=generator)]
            idx = torch.cdist(residual, book).argmin(1)
        residual = residual - book[idx]
        reset.append(int(len(dead)))
    return reset


def train_rqvae(x: np.ndarray, cfg: RQVAEConfig, levels: int, size: int, seed: int) -> tuple[RQVAE, Quantized]:
    """Train on all item embeddings (full-batch evaluation each epoch for dead codes), return codes."""
    from genrec.progress import progress_bar

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(np.asarray(x, np.float32))
    model = RQVAE(data.shape[1], cfg, levels, size)
    model.fit_input_scale(data)
    if cfg.kmeans_init:
        model.eval()
        kmeans_init(model, data, seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: dict[str, list[float]] = {"loss": [], "recon": [], "dead_codes": []}
    with progress_bar() as bar:
        task = bar.add_task("RQ-VAE", total=cfg.epochs, status="")
        for epoch in range(cfg.epochs):
            model.train()
            total = recon_total = 0.0
            for batch in torch.randperm(len(data), generator=generator).split(cfg.batch_size):
                recon, _, vq_loss, _ = model(data[batch], cfg.beta)
                recon_loss = ((recon - data[batch]) / model.input_scale).pow(2).mean()
                loss = recon_loss + vq_loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
                recon_total += recon_loss.item() * len(batch)
            history["loss"].append(total / len(data))
            history["recon"].append(recon_total / len(data))
            if cfg.dead_code_reset and epoch < cfg.epochs - 1:  # never after the last update: codes must be trained
                model.eval()
                history["dead_codes"].append(sum(reset_dead_codes(model, data, generator)))
            bar.update(task, advance=1, status=f"recon {history['recon'][-1]:.4f}")
    return model, encode(model, data, cfg.beta, history)


@torch.no_grad()
def encode(model: RQVAE, data: torch.Tensor, beta: float, history: dict[str, list[float]]) -> Quantized:
    """Codes of every item, last-level distances, reconstruction MSE (eval mode, deterministic)."""
    model.eval()
    recon, codes, _, residuals = model(data, beta)
    last_dist = torch.cdist(residuals[-1], model.quantizer.codebooks[-1]) ** 2
    tensors = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return Quantized(codes=codes.numpy().astype(np.int64), last_dist=last_dist.numpy().astype(np.float32),
                     recon_loss=float(((recon - data) ** 2).mean()), tensors=tensors, history=history)
