"""Semantic IDs: RQ-VAE (or RQ-KMeans) codes of item embeddings, made unique per item."""

from genrec.sid.config import RQVAEConfig, SidConfig
from genrec.sid.stage import inputs, run

__all__ = ["RQVAEConfig", "SidConfig", "inputs", "run"]
