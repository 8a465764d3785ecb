"""`openai` backend: any OpenAI-compatible chat-completions server (vLLM's, a hosted model).

Async httpx with bounded concurrency (a semaphore), per-request timeouts, and retries with exponential
back-off on timeouts, connection errors, 429 (honouring `Retry-After`) and 5xx. Answers are yielded as
they arrive, so the stage commits each one to the cache at once.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from genrec.mining.backends.base import Generation, Sampling
from genrec.mining.config import BackendConfig
from genrec.mining.prompts import Request
from genrec.mining.schema import answer_schema

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_DONE = object()


def retry_delay(attempt: int, retry_after: str | None, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's Retry-After if given, else jittered 2^n back-off."""
    if retry_after:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return min(cap, base * 2 ** attempt) * (0.5 + random.random() / 2)


class OpenAIBackend:
    """Chat completions over HTTP; `response_format` carries the answer's JSON schema when `structured`."""

    def __init__(self, config: BackendConfig, model: str):
        self.config, self.model_id = config, model
        self.headers = {}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ValueError(f"backend {config.label}: environment variable {config.api_key_env} is not set")
            self.headers["Authorization"] = f"Bearer {key}"

    def _body(self, request: Request, sampling: Sampling) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_id, "messages": request.messages,
                                "max_tokens": sampling.max_tokens, "temperature": sampling.temperature}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.config.structured:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "deep_interests", "schema": answer_schema()}}
        return body

    async def _ask(self, client: httpx.AsyncClient, body: dict[str, Any]) -> Generation:
        url = self.config.base_url.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        problem = ""
        for attempt in range(self.config.max_http_retries + 1):
            retry_after = None
            try:
                response = await client.post(url, json=body, headers=self.headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    data = response.json()
                    text = data["choices"][0]["message"].get("content") or ""
                    tokens = int((data.get("usage") or {}).get("completion_tokens") or 0)
                    return Generation(text, tokens)
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in RETRY_STATUS:
                    break
                retry_after = response.headers.get("retry-after")
            if attempt < self.config.max_http_retries:
                await asyncio.sleep(retry_delay(attempt, retry_after))
        return Generation("", 0, error=problem)

    async def _run(self, requests: list[Request], sampling: Sampling, out: queue.Queue) -> None:
        semaphore = asyncio.Semaphore(self.config.concurrency)
        limits = httpx.Limits(max_connections=self.config.concurrency)
        async with httpx.AsyncClient(timeout=self.config.timeout_s, limits=limits) as client:
            async def one(i: int) -> None:
                async with semaphore:
                    out.put((i, await self._ask(client, self._body(requests[i], sampling))))

            await asyncio.gather(*(one(i) for i in range(len(requests))))

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[tuple[int, Generation]]:
        results: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        def worker() -> None:
            try:
                asyncio.run(self._run(requests, sampling, results))
            except BaseException as exc:  # surfaced in the caller's thread
                failure.append(exc)
            finally:
                results.put(_DONE)

        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        while (item := results.get()) is not _DONE:
            yield item
        thread.join()
        if failure:
            raise failure[0]
