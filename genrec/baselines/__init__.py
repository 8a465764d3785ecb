"""Reference systems measured on the same split: MostPop and SASRec."""

from genrec.baselines.config import BaselinesConfig, SASRecConfig
from genrec.baselines.stage import inputs, run

__all__ = ["BaselinesConfig", "SASRecConfig", "inputs", "run"]
