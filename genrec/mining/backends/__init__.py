"""Mining backends behind one interface: `hf`, `vllm`, `openai`."""

from __future__ import annotations

from genrec.mining.backends.base import Backend, Generation, Sampling
from genrec.mining.config import BackendConfig


def make_backend(config: BackendConfig) -> Backend:
    """Build the backend a config names (local models default to the converted SmolLM2-135M-Instruct)."""
    if config.kind == "openai":
        from genrec.mining.backends.openai import OpenAIBackend

        return OpenAIBackend(config, config.model)  # type: ignore[arg-type]
    from genrec.llm_weights import default_llm_path

    model = config.model or str(default_llm_path())
    if config.kind == "hf":
        from genrec.mining.backends.hf import HFBackend

        return HFBackend(config, model)
    from genrec.mining.backends.vllm import VLLMBackend

    return VLLMBackend(config, model)


__all__ = ["Backend", "Generation", "Sampling", "make_backend"]
