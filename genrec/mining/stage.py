"""The mining stage: ask every configured LLM about the sampled items and users, cache every answer,
merge the interests of all models, write `mine/interests.parquet` and the manifest."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from genrec.artifacts import Manifest, RunPaths, atomic_output, stage_run
from genrec.data import load_items, load_sequences, training_items
from genrec.llm_weights import DEFAULT_LLM_NAME
from genrec.mining.backends import Sampling, make_backend
from genrec.mining.cache import MiningCache
from genrec.mining.config import BackendConfig, MiningConfig
from genrec.mining.merge import Proposal, merge_proposals
from genrec.mining.prompts import TEMPLATES, PromptBook, Request
from genrec.mining.schema import ParseError, parse_answer
from genrec.progress import progress_bar


def inputs(config: MiningConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    book_dir = config.prompts_dir or PromptBook().folder
    return [paths.items, paths.sequences, *(Path(book_dir) / t for t in TEMPLATES.values())]


def sample(ids: list[str], limit: int | None, seed: int) -> list[str]:
    """A deterministic sample: ids ordered by a seeded hash, the first `limit` kept (so a smaller limit's
    sample is a prefix of a larger one's and its cached answers are reused)."""
    ordered = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return ordered if limit is None else ordered[:limit]


def cache_model_key(config: BackendConfig) -> str:
    """The cache's `model` column: the model plus every setting that changes its answers."""
    settings = json.dumps([config.kind, config.structured, config.max_tokens, config.temperature,
                           config.retry_temperature], sort_keys=True)
    return f"{Path(config.model or DEFAULT_LLM_NAME).name}|{hashlib.sha256(settings.encode()).hexdigest()[:8]}"


def build_requests(config: MiningConfig, run_dir: Path, vision: bool) -> list[Request]:
    """Item requests (visual ones for a vision backend and items with an image), then user requests."""
    book = PromptBook(config.prompts_dir, config.description_chars, config.history_items)
    items = load_items(run_dir).set_index("item_id", drop=False)
    requests = []
    if "item" in config.kinds:
        for item_id in sample(list(items.index), config.limit_items, config.seed):
            requests.append(book.item_request(items.loc[item_id], vision))
    if "user" in config.kinds:
        training = training_items(load_sequences(run_dir))
        for user in sample(list(training), config.limit_users, config.seed):
            requests.append(book.user_request(user, training[user], items))
    return requests


@dataclass
class BackendStats:
    """What one backend did in this run (asked = calls made now; the rest counts cached answers too)."""

    label: str
    requests: int = 0
    ok: int = 0
    failed: int = 0
    asked: int = 0
    tokens: int = 0
    seconds: float = 0.0
    cached_seconds: float = 0.0  # generation time earlier runs spent on the answers taken from the cache
    attempts_hist: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int]:
        finished = self.ok + self.failed
        return {"requests": self.requests, "ok": self.ok, "failed": self.failed, "asked_now": self.asked,
                "parse_success_rate": round(self.ok / finished, 4) if finished else 0.0,
                "seconds": round(self.seconds, 2),
                "llm_seconds": round(self.seconds + self.cached_seconds, 2),
                "items_per_s": round(self.asked / self.seconds, 3) if self.seconds else 0.0,
                "tokens_per_s": round(self.tokens / self.seconds, 1) if self.seconds else 0.0,
                "finished_on_attempt": dict(sorted(self.attempts_hist.items()))}


def mine_with(config: BackendConfig, requests: list[Request], cache: MiningCache, max_attempts: int,
              checkpoint: Callable[[], None] | None = None, every: int = 0) -> BackendStats:
    """Ask the backend every request not finished in the cache, retrying unparseable answers; commit each answer.

    The model is loaded only when something is left to ask.
    `checkpoint()` is called after every `every` new answers (the stage rewrites interests.parquet there).
    """
    label, model_key = config.label, cache_model_key(config)
    stats = BackendStats(label, requests=len(requests))
    pending: dict[int, list[Request]] = {}
    for request in requests:
        cached = cache.get(label, model_key, request)
        if cached is None or cached.status == "retry":
            pending.setdefault(cached.attempts if cached else 0, []).append(request)
        else:
            stats.ok += cached.status == "ok"
            stats.failed += cached.status == "failed"
            stats.cached_seconds += cached.seconds
    backend = make_backend(config) if pending else None
    with progress_bar() as bar:
        task = bar.add_task(f"mine {label}", total=len(requests), completed=stats.ok + stats.failed, status="")
        while pending:
            attempt = min(pending)
            batch = pending.pop(attempt)
            sampling = Sampling.for_attempt(config, attempt)
            start = time.perf_counter()
            for i, generation in backend.generate(batch, sampling):  # type: ignore[union-attr]
                request, attempts = batch[i], attempt + 1
                try:
                    if generation.error:
                        raise ParseError(f"request failed: {generation.error}")
                    parsed, error, status = parse_answer(generation.text).model_dump(), None, "ok"
                except ParseError as exc:
                    parsed, error = None, str(exc)
                    status = "failed" if attempts >= max_attempts else "retry"
                elapsed = time.perf_counter() - start
                cache.put(label, model_key, request, status, attempts, generation.text, parsed, error,
                          generation.tokens, elapsed)
                stats.asked += 1
                stats.tokens += generation.tokens
                if status == "retry":
                    pending.setdefault(attempts, []).append(request)
                else:
                    stats.ok += status == "ok"
                    stats.failed += status == "failed"
                    stats.attempts_hist[attempts] = stats.attempts_hist.get(attempts, 0) + 1
                    bar.advance(task)
                stats.seconds += elapsed
                if checkpoint is not None and every and stats.asked % every == 0:
                    checkpoint()
                start = time.perf_counter()
                rate = stats.asked / stats.seconds if stats.seconds else 0.0
                bar.update(task, status=f"failed {stats.failed} · {rate:.2f} req/s · {stats.tokens / max(stats.seconds, 1e-9):.0f} tok/s")
    return stats


def collect(backends: list[tuple[BackendConfig, list[Request]]], cache: MiningCache) -> list[Proposal]:
    """Every parsed interest of the requested entities, backend by backend (the merge keeps this order)."""
    proposals = []
    for config, requests in backends:
        label, model_key = config.label, cache_model_key(config)
        for request in requests:
            cached = cache.get(label, model_key, request)
            if cached is None or cached.parsed is None:
                continue
            for interest in cached.parsed["interests"]:
                proposals.append(Proposal(request.kind, request.entity_id, interest["interest"], interest["evidence"],
                                          cached.parsed["reasoning"], label, request.prompt_hash))
    return proposals


def run(config: MiningConfig, run_dir: Path) -> Manifest:
    """Mine, merge, write `interests.parquet` (also every `checkpoint_every` answers, so a long run's partial
    results are readable); the manifest carries counts and per-backend speed and parse rates."""
    paths = RunPaths(Path(run_dir))
    with stage_run("mine", config, paths.stage_dir("mine"), inputs(config, run_dir)) as manifest:
        cache = MiningCache(paths.mining_cache)
        try:
            done: list[tuple[BackendConfig, list[Request]]] = []
            per_backend = {}

            def write_table() -> pd.DataFrame:
                table = merge_proposals(collect(done, cache), config.dedup_threshold)
                with atomic_output(paths.interests) as tmp:
                    table.to_parquet(tmp, index=False)
                return table

            for backend_config in config.backends:
                requests = build_requests(config, run_dir, backend_config.vision)
                done.append((backend_config, requests))
                stats = mine_with(backend_config, requests, cache, config.max_attempts, write_table, config.checkpoint_every)
                per_backend[backend_config.label] = stats.summary()
            table = write_table()
        finally:
            cache.close()
        ok = sum(s["ok"] for s in per_backend.values())
        failed = sum(s["failed"] for s in per_backend.values())
        manifest.outputs = [str(paths.interests), str(paths.mining_cache)]
        manifest.counts = {
            "requests": sum(s["requests"] for s in per_backend.values()), "ok": ok, "failed": failed,
            "asked_now": sum(s["asked_now"] for s in per_backend.values()),
            "items": int(table.loc[table["kind"] == "item", "entity_id"].nunique()),
            "users": int(table.loc[table["kind"] == "user", "entity_id"].nunique()),
            "interests": len(table),
        }
        seconds = sum(s["seconds"] for s in per_backend.values())
        manifest.metrics = {
            "parse_success_rate": round(ok / (ok + failed), 4) if ok + failed else 0.0,
            "items_per_s": round(manifest.counts["asked_now"] / seconds, 3) if seconds else None,
            "tokens_per_s": round(sum(s["tokens_per_s"] * s["seconds"] for s in per_backend.values()) / seconds, 1)
            if seconds else None,
            # the LLM time every answer in the table cost, this run's and the cached ones' (a re-run served from
            # the cache has a short wall_s; this keeps the stage's real cost visible)
            "llm_seconds": round(sum(s["llm_seconds"] for s in per_backend.values()), 1),
            "mean_agreement": round(float(table["agreement"].mean()), 3) if len(table) else 0.0,
            "backends": per_backend,
        }
    return manifest
