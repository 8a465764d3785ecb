"""The two decoding engines behind the endpoint, both batching concurrent requests.

`VllmEngine`: `AsyncVllmBeamSearch` over an in-process vLLM engine; at every engine call one worker thread
sends the waiting beams of all in-flight requests (each at its own SID level) together.
`HfEngine` (fallback when vLLM is absent): transformers' constrained beam search in a worker thread; the
requests that arrive while one batch decodes form the next batch (no waiting window, so no added latency).
"""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from genrec.decode.interest import MergeRule, Recommendation, Select
from genrec.decode.trie import SidTrie

Ranked = list[tuple[str, float]]


class Engine(Protocol):
    """Decode one prompt into its top-k items with scores; batching across callers is the engine's job."""

    name: str

    async def start(self) -> None: ...

    async def search(self, prompt: list[int], num_beams: int, k: int) -> Ranked: ...

    async def search_interest(self, prompt: list[int], num_beams: int, k: int, select: Select,
                              rule: MergeRule) -> list[Recommendation]: ...

    async def stop(self) -> None: ...


def resolve_engine(engine: str) -> str:
    """`auto` -> `vllm` when vLLM is importable, else `hf`; an explicit `vllm` without vLLM is an error."""
    has_vllm = importlib.util.find_spec("vllm") is not None
    if engine == "auto":
        return "vllm" if has_vllm else "hf"
    if engine == "vllm" and not has_vllm:
        raise RuntimeError("serve.engine=vllm but vLLM is not installed (pip install genrec[vllm]); use engine=hf")
    return engine


class VllmEngine:
    """Constrained beam search on an in-process vLLM engine, continuously batched across requests."""

    name = "vllm"

    def __init__(self, checkpoint: Path, trie: SidTrie, enforce_eager: bool, max_model_len: int | None) -> None:
        self._args = dict(checkpoint=checkpoint, trie=trie, enforce_eager=enforce_eager, max_model_len=max_model_len)
        self._search: Any = None

    async def start(self) -> None:
        from genrec.decode.vllm_beam import AsyncVllmBeamSearch

        args = dict(self._args)
        self._search = AsyncVllmBeamSearch.from_checkpoint(args.pop("checkpoint"), args.pop("trie"), **args)

    async def search(self, prompt: list[int], num_beams: int, k: int) -> Ranked:
        return await self._search.search(prompt, num_beams, k)

    async def search_interest(self, prompt: list[int], num_beams: int, k: int, select: Select,
                              rule: MergeRule) -> list[Recommendation]:
        return await self._search.search_interest(prompt, num_beams, k, select, rule)

    async def stop(self) -> None:
        if self._search is not None:
            self._search.shutdown()


@dataclass(frozen=True)
class _Request:
    """One queued HF request; interest requests carry their interests' `select` and the merge rule."""

    prompt: list[int]
    num_beams: int
    k: int
    select: Select | None
    rule: MergeRule | None
    future: asyncio.Future[Any]

    @property
    def key(self) -> tuple:
        """Requests of one key decode in one batch (plain beam: any k; the longest is cut per request)."""
        if self.select is None:
            return (self.num_beams, False, 0, MergeRule())
        return (self.num_beams, True, self.k, self.rule)


class HfEngine:
    """Constrained beam search with transformers, continuously micro-batched in one worker thread."""

    name = "hf"

    def __init__(self, checkpoint: Path, trie: SidTrie, batch_size: int) -> None:
        self.checkpoint = checkpoint
        self.trie = trie
        self.batch_size = batch_size
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._model: Any = None

    async def start(self) -> None:
        from genrec.model import load_checkpoint

        self._model, _, _ = await asyncio.to_thread(load_checkpoint, self.checkpoint)
        self._worker = asyncio.create_task(self._run())

    async def search(self, prompt: list[int], num_beams: int, k: int) -> Ranked:
        return await self._submit(prompt, num_beams, k, None, None)

    async def search_interest(self, prompt: list[int], num_beams: int, k: int, select: Select,
                              rule: MergeRule) -> list[Recommendation]:
        return await self._submit(prompt, num_beams, k, select, rule)

    async def _submit(self, prompt: list[int], num_beams: int, k: int, select: Select | None,
                      rule: MergeRule | None) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(prompt, num_beams, k, select, rule, future))
        return await future

    def _decode(self, group: list[_Request]) -> list[Any]:
        """One batch of requests of one `_Request.key` (beam width, decoding; interest: also k and merge rule)."""
        from genrec.decode.hf_beam import constrained_beam_search, interest_beam_search

        prompts, num_beams, first = [r.prompt for r in group], group[0].num_beams, group[0]
        if first.select is None:
            k = max(r.k for r in group)
            return [ranked[:r.k] for ranked, r in zip(constrained_beam_search(self._model, prompts, self.trie,
                                                                              num_beams, k, len(group)), group, strict=True)]
        selects = [r.select for r in group]

        def select(root):  # each request's own interests
            return [sel([lp])[0] for sel, lp in zip(selects, root, strict=True)]

        return interest_beam_search(self._model, prompts, self.trie, num_beams, first.k, len(group), select,
                                    first.rule)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for key in sorted({r.key for r in batch}):
                group = [r for r in batch if r.key == key]
                try:
                    results = await asyncio.to_thread(self._decode, group)
                except Exception as exc:  # one bad batch fails its requests, never the worker
                    for r in group:
                        if not r.future.done():
                            r.future.set_exception(exc)
                    continue
                for r, result in zip(group, results, strict=True):
                    if not r.future.done():
                        r.future.set_result(result)

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()


def build_engine(engine: str, checkpoint: Path, trie: SidTrie, *, hf_batch_size: int, enforce_eager: bool,
                 max_model_len: int | None) -> Engine:
    """The configured engine (not yet started)."""
    if resolve_engine(engine) == "vllm":
        return VllmEngine(checkpoint, trie, enforce_eager, max_model_len)
    return HfEngine(checkpoint, trie, hf_batch_size)
