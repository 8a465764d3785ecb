"""Config of the sid stage: which quantiser turns item embeddings into semantic IDs, and how."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from genrec.config import StrictModel


class RQVAEConfig(StrictModel):
    """RQ-VAE training (TIGER / LC-Rec): MLP autoencoder with residual codebooks on the latent."""

    hidden: list[int] = Field(default_factory=lambda: [512, 256, 128], description="encoder widths (decoder mirrors)")
    latent_dim: int = Field(32, ge=2)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    epochs: int = Field(100, ge=1, description="100 x 4.3k items: ~30 s CPU (1 thread)")
    batch_size: int = Field(256, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    beta: float = Field(0.25, ge=0, description="commitment loss weight")
    kmeans_init: bool = Field(True, description="initialise each codebook by k-means on all items' residuals")
    dead_code_reset: bool = Field(True, description="after each epoch, move codes no item chose onto random residuals")


class SidConfig(StrictModel):
    """Semantic IDs: L residual levels of K codes; collisions get an extra level so every SID is unique.

    `collisions`: `extra_level` appends a 4th token `<d_j>` (j = rank within the colliding group, 0 for unique
    items; TIGER) to every item when any collision remains; `reassign` first moves colliding items to their
    nearest free last-level code (within the same prefix), and appends the extra level only if some prefix
    has more items than codes.
    """

    quantizer: Literal["rqvae", "rqkmeans"] = "rqvae"
    embedding: Literal["fused", "text", "interest"] = Field("fused", description="which tensor of item_emb.safetensors")
    levels: int = Field(3, ge=1, le=3, description="code levels before disambiguation (tokens a, b, c)")
    codebook_size: int = Field(256, ge=2)
    collisions: Literal["extra_level", "reassign"] = "reassign"
    seed: int = 42
    threads: int = Field(1, ge=1, description="torch CPU threads (1 was faster than 2 on the shared 2-core box)")
    rqvae: RQVAEConfig = RQVAEConfig()
