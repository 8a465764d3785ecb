"""Config of the embed stage: how item text and curated interests become one vector per item."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from genrec.config import StrictModel

DEFAULT_TEMPLATE = "{title}. Brand: {brand}. Categories: {categories}. {description}"

Fusion = Literal["concat", "weighted_sum", "text_only"]
InterestSource = Literal["auto", "labelled", "mined", "none"]
Collab = Literal["none", "sasrec"]


class EmbedConfig(StrictModel):
    """Item embeddings for semantic IDs (IEID).

    `fusion` decides how an item's text vector `t` and interest vector `i` (both L2-normalised) combine:
    `concat` -> [sqrt(1-alpha) t, sqrt(alpha) i]; `weighted_sum` -> normalise((1-alpha) t + alpha i);
    `text_only` -> t (the TIGER / LC-Rec setting and the ablation). An item without interests uses its
    text vector in the interest slot, so its fused vector is what text alone gives under the same rule.
    """

    model: str | None = Field(None, description="sentence-transformers folder; None = the offline all-MiniLM-L6-v2")
    template: str = Field(DEFAULT_TEMPLATE, description="item text; fields: title, brand, categories, description")
    max_chars: int = Field(1000, ge=16, description="item text is cut to this many characters before encoding")
    max_tokens: int = Field(128, ge=8, description="encoder sequence limit (cost grows with it; 128 keeps title, "
                            "brand, categories and the start of the description)")
    fusion: Fusion = "concat"
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the interest vector in the fusion")
    interests: InterestSource = Field(
        "auto", description="auto: labelled interests (label 1, weighted by score) if present, else mined "
        "interests (weighted by agreement), else none (text only)")
    max_interests: int = Field(8, ge=1, description="at most this many interests per item (highest weight first)")
    collab: Collab = Field(
        "none", description="sasrec: append the trained SASRec baseline's item embeddings (collaborative signal, "
        "as LETTER argues SIDs need; needs `sasrec` in baselines.systems). none: content only")
    collab_weight: float = Field(0.5, ge=0.0, le=1.0, description="collaborative share w: the vector becomes "
                                 "[sqrt(1-w) fused, sqrt(w) sasrec]; 1 = SIDs from SASRec alone. 0.5 was best of "
                                 "0.25-1.0 on scientific, level with 0.75 on beauty (BENCHMARKS.md, SFT)")
    image_emb: Path | None = Field(
        None, description="optional image vectors: .safetensors (tensor `image`, metadata item_ids) or .npz "
        "(arrays item_ids, embeddings); appended to the fused vector, zeros for items without one")
    image_weight: float = Field(0.5, ge=0.0, le=1.0, description="scale of the appended image vector")
    batch_size: int = Field(64, ge=1)
    threads: int = Field(2, ge=1, description="torch CPU threads while encoding")
