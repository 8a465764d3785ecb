"""The two decoding engines behind the endpoint, both batching concurrent requests.

`VllmEngine`: `AsyncVllmBeamSearch` over an in-process vLLM engine; at every engine call one worker thread
sends the waiting beams of all in-flight requests (each at its own SID level) together.
`HfEngine` (fallback when vLLM is absent): transformers' constrained beam search in a worker thread; the
requests that arrive while one batch decodes form the next batch (no waiting window, so no added latency).
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any, Protocol

from genrec.decode.interest import Recommendation, Select
from genrec.decode.trie import SidTrie

Ranked = list[tuple[str, float]]


class Engine(Protocol):
    """Decode one prompt into its top-k items with scores; batching across callers is the engine's job."""

    name: str

    async def start(self) -> None: ...

    async def search(self, prompt: list[int], num_beams: int, k: int) -> Ranked: ...

    async def search_interest(self, prompt: list[int], num_beams: int, k: int,
                              select: Select) -> list[Recommendation]: ...

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

    async def search_interest(self, prompt: list[int], num_beams: int, k: int, select: Select) -> list[Recommendation]:
        return await self._search.search_interest(prompt, num_beams, k, select)

    async def stop(self) -> None:
        if self._search is not None:
            self._search.shutdown()


class HfEngine:
    """Constrained beam search with transformers, continuously micro-batched in one worker thread."""

    name = "hf"

    def __init__(self, checkpoint: Path, trie: SidTrie, batch_size: int) -> None:
        self.checkpoint = checkpoint
        self.trie = trie
        self.batch_size = batch_size
        self._queue: asyncio.Queue[tuple[list[int], int, int, Select | None, asyncio.Future[Any]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._model: Any = None

    async def start(self) -> None:
        from genrec.model import load_checkpoint

        self._model, _, _ = await asyncio.to_thread(load_checkpoint, self.checkpoint)
        self._worker = asyncio.create_task(self._run())

    async def search(self, prompt: list[int], num_beams: int, k: int) -> Ranked:
        future: asyncio.Future[Ranked] = asyncio.get_running_loop().create_future()
        await self._queue.put((prompt, num_beams, k, None, future))
        return await future

    async def search_interest(self, prompt: list[int], num_beams: int, k: int, select: Select) -> list[Recommendation]:
        future: asyncio.Future[list[Recommendation]] = asyncio.get_running_loop().create_future()
        await self._queue.put((prompt, num_beams, k, select, future))
        return await future

    def _decode(self, group: list[tuple[list[int], int, int, Select | None, asyncio.Future[Any]]]) -> list[Any]:
        """One batch of requests with the same beam width and decoding (interest: also the same k)."""
        from genrec.decode.hf_beam import constrained_beam_search, interest_beam_search

        prompts, num_beams = [b[0] for b in group], group[0][1]
        if group[0][3] is None:
            k = max(b[2] for b in group)
            return [r[:want] for r, want in zip(constrained_beam_search(self._model, prompts, self.trie, num_beams, k,
                                                                        len(group)), (b[2] for b in group), strict=True)]
        selects = [b[3] for b in group]

        def select(root):  # each request's own interests
            return [sel([lp])[0] for sel, lp in zip(selects, root, strict=True)]

        return interest_beam_search(self._model, prompts, self.trie, num_beams, group[0][2], len(group), select)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            keys = sorted({(b[1], b[3] is not None, b[2] if b[3] is not None else 0) for b in batch})
            for key in keys:
                group = [b for b in batch if (b[1], b[3] is not None, b[2] if b[3] is not None else 0) == key]
                try:
                    results = await asyncio.to_thread(self._decode, group)
                except Exception as exc:  # one bad batch fails its requests, never the worker
                    for *_, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()


def build_engine(engine: str, checkpoint: Path, trie: SidTrie, *, hf_batch_size: int, enforce_eager: bool,
                 max_model_len: int | None) -> Engine:
    """The configured engine (not yet started)."""
    if resolve_engine(engine) == "vllm":
        return VllmEngine(checkpoint, trie, enforce_eager, max_model_len)
    return HfEngine(checkpoint, trie, hf_batch_size)
