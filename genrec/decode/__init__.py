"""Decoding: the SID trie and constrained beam search (`genrec.decode.trie`, `genrec.decode.hf_beam`), and the
`recommend` stage. Light at import (the pipeline imports the config); torch loads inside the stage."""

from genrec.decode.config import RecommendConfig
from genrec.decode.stage import inputs, run

__all__ = ["RecommendConfig", "inputs", "run"]
