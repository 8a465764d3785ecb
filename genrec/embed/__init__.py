"""Item embeddings for semantic IDs: item text fused with curated interests (IEID)."""

from genrec.embed.config import EmbedConfig
from genrec.embed.stage import inputs, run

__all__ = ["EmbedConfig", "inputs", "run"]
