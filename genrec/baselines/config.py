"""Config of the baselines stage (MostPop, SASRec)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from genrec.config import (DistillConfig, Epochs, LearningRate, Patience, StrictModel, TrainingConfig,
                           unset_is_absent)


class SASRecConfig(TrainingConfig):
    """SASRec (Kang & McAuley 2018) trained with full-softmax cross-entropy over all items."""

    hidden: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    max_len: int = Field(20, ge=1, description="history window (the protocol's 20 items)")
    lr: LearningRate = 1e-3
    epochs: Epochs = 200
    patience: Patience = Field(10, description="epochs without validation NDCG@10 gain before stopping")
    distill: DistillConfig | None = Field(
        None, exclude_if=unset_is_absent, description="also train towards these SASRecs' (model.pt) mean "
        "distribution over the items: the baseline's side of the decoder's ensemble distillation")


class BaselinesConfig(StrictModel):
    """Which reference systems to fit; each writes `eval/<name>/recs.jsonl` for the test users."""

    systems: list[Literal["mostpop", "sasrec"]] = Field(default_factory=lambda: ["mostpop", "sasrec"])
    k: int = Field(50, ge=10, description="items recommended per user")
    sasrec: SASRecConfig = SASRecConfig()
