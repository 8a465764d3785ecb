"""Config of the baselines stage (MostPop, SASRec)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from genrec.config import StrictModel


class SASRecConfig(StrictModel):
    """SASRec (Kang & McAuley 2018) trained with full-softmax cross-entropy over all items."""

    hidden: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    max_len: int = Field(20, ge=1, description="history window (the protocol's 20 items)")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(200, ge=1)
    patience: int = Field(10, ge=1, description="epochs without validation NDCG@10 gain before stopping")
    eval_every: int = Field(2, ge=1)
    seed: int = 42
    threads: int = Field(1, ge=1, description="torch threads; 1 avoids thread thrashing on a shared CPU")


class BaselinesConfig(StrictModel):
    """Which reference systems to fit; each writes `eval/<name>/recs.jsonl` for the test users."""

    systems: list[Literal["mostpop", "sasrec"]] = Field(default_factory=lambda: ["mostpop", "sasrec"])
    k: int = Field(50, ge=10, description="items recommended per user")
    sasrec: SASRecConfig = SASRecConfig()
