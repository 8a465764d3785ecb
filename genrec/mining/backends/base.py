"""The one interface every mining backend implements, and what it returns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from genrec.mining.config import BackendConfig
from genrec.mining.prompts import Request


@dataclass(frozen=True)
class Generation:
    """One answer: its text and how many tokens were generated (`error` when the call itself failed)."""

    text: str
    tokens: int
    error: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Sampling of one attempt: the first is the configured (greedy by default); retries sample, seeded."""

    max_tokens: int
    temperature: float
    seed: int | None

    @classmethod
    def for_attempt(cls, config: BackendConfig, attempt: int) -> Sampling:
        if attempt == 0:
            return cls(config.max_tokens, config.temperature, None)
        return cls(config.max_tokens, config.retry_temperature, attempt)


class Backend(Protocol):
    """An LLM that answers chat requests. `generate` yields (index into requests, Generation) as answers arrive."""

    config: BackendConfig
    model_id: str

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[tuple[int, Generation]]: ...


def text_only(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages with list contents flattened to their text parts (for text-only chat templates)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = "\n".join(part["text"] for part in content if part.get("type") == "text")
        out.append({"role": message["role"], "content": content})
    return out


def batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def token_batches(lengths: list[int], budget: int, size: int) -> Iterator[list[int]]:
    """Consecutive indices in batches of at most `size` whose lengths sum to at most `budget` (a longer one
    goes alone)."""
    batch: list[int] = []
    used = 0
    for i, length in enumerate(lengths):
        if batch and (used + length > budget or len(batch) >= size):
            yield batch
            batch, used = [], 0
        batch.append(i)
        used += length
    if batch:
        yield batch
