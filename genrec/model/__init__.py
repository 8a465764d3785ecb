"""The generative model: SID tokenizer, `scratch` / `llm` decoders, prompts, checkpoints (no trainer code)."""

from genrec.model.config import LoraSettings, ModelConfig, ModelInfo, ScratchConfig
from genrec.model.sid_tokens import SidFormatError, codes_to_sid, parse_sid, sid_vocabulary

__all__ = [
    "LoraSettings", "ModelConfig", "ModelInfo", "ScratchConfig", "SidFormatError", "build_model",
    "build_prompt_ids", "codes_to_sid", "load_checkpoint", "parse_sid", "save_checkpoint", "sid_token_ids",
    "sid_vocabulary",
]


def __getattr__(name: str):  # heavy (torch / transformers) parts load on first use
    if name == "build_model":
        from genrec.model.build import build_model

        return build_model
    if name in ("load_checkpoint", "save_checkpoint"):
        from genrec.model import checkpoint

        return getattr(checkpoint, name)
    if name == "build_prompt_ids":
        from genrec.model.prompt import build_prompt_ids

        return build_prompt_ids
    if name == "sid_token_ids":
        from genrec.model.tokenizer import sid_token_ids

        return sid_token_ids
    raise AttributeError(name)
