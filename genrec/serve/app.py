"""The recommendation HTTP API (FastAPI): `POST /v1/recommend`, `GET /healthz`, `GET /metrics`.

A request names a known user (`user_id`: their history is read from the run) or sends an item-id
`history`; the checkpoint's prompt is built from the history's SIDs and decoded by constrained beam
search. Problems with a request are 4xx answers that name the problem; `/v1/*` needs the API key when
one is configured (header `X-API-Key` or `Authorization: Bearer <key>`).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from genrec.artifacts import RunPaths
from genrec.model.sources import HistoryPrompts
from genrec.serve.catalog import Catalog, Interest
from genrec.serve.config import ServeConfig
from genrec.serve.engines import Engine, build_engine


class RecommendRequest(BaseModel):
    """A user id OR an item-id history (oldest first), how many items, optional interests for the prompt."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    history: list[str] | None = None
    k: int = 10
    interests: list[str] | None = Field(None, description="used by checkpoints trained with interests in the prompt")
    decoding: Literal["beam", "interest"] | None = Field(
        None, description="beam, or interest (one beam group per predicted interest); default: serve.decoding")


class InterestOut(BaseModel):
    interest: str
    score: float


class ItemOut(BaseModel):
    item_id: str
    title: str
    sid: str
    score: float = Field(description="sum of the SID tokens' log-probabilities (higher is better)")
    interests: list[InterestOut] = Field(description="the item's own curated interests")
    interest: str | None = Field(None, description="decoding=interest: the interest whose beam group found it")


class GroupOut(BaseModel):
    """decoding=interest: one predicted interest, its first-level SID code (None: a prompt-conditioned interest
    over the whole catalogue) and its items (best first)."""

    interest: str
    code: str | None
    items: list[str]


class RecommendResponse(BaseModel):
    user_id: str | None
    engine: str
    num_beams: int
    items: list[ItemOut]
    interests: list[InterestOut] = Field(description="the user's interests that explain these items")
    interest_source: str
    decoding: str = "beam"
    groups: list[GroupOut] = Field(default_factory=list, description="decoding=interest: the items by interest")


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self, engine: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("genrec_requests", "recommend requests by HTTP status", ["status"],
                                registry=self.registry)
        self.latency = Histogram("genrec_request_seconds", "recommend latency (validation + decoding)",
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry)
        self.inflight = Gauge("genrec_inflight_requests", "recommend requests being decoded", registry=self.registry)
        self.items = Counter("genrec_items_returned", "items returned", registry=self.registry)
        Gauge("genrec_engine_info", "decoding engine", ["engine"], registry=self.registry).labels(engine).set(1)


@dataclass
class ServeState:
    """Everything a request needs, loaded once at start-up."""

    config: ServeConfig
    catalog: Catalog
    prompts: HistoryPrompts  # history item ids -> prompt ids in the checkpoint's format
    engine: Engine
    metrics: Metrics
    api_key: str | None
    select_for: Any = None  # decoding=interest: (users, histories, k) -> select (genrec.decode.interest_sources)


def load_state(config: ServeConfig, run_dir: Path) -> ServeState:
    """Read the run's catalog, the checkpoint's tokenizer and prompt info, and build the engine."""
    from transformers import AutoTokenizer

    from genrec.decode.interest_sources import interest_selector
    from genrec.decode.trie import SidTrie
    from genrec.model.checkpoint import load_info

    checkpoint = config.checkpoint_path(run_dir)
    info = load_info(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    catalog = Catalog.load(run_dir)
    sid_map = pd.read_parquet(RunPaths(run_dir).sid_map, columns=["item_id", "sid"])
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    engine = build_engine(config.engine, checkpoint, trie, hf_batch_size=config.hf_batch_size,
                          enforce_eager=config.enforce_eager, max_model_len=config.max_model_len)
    prompts = HistoryPrompts(tokenizer, info, catalog.sids, catalog.titles)
    state = ServeState(config=config, catalog=catalog, prompts=prompts, engine=engine,
                       metrics=Metrics(engine.name), api_key=os.environ.get(config.api_key_env) or None)
    state.select_for, _ = interest_selector(config.interest_source, config.num_interests, config.num_beams, run_dir,
                                            sid_map, tokenizer, list(catalog.histories), config.threads or 1,
                                            config.interest_model, info, prompts.ids)
    return state


def _interests(ranked: list[Interest], limit: int) -> list[InterestOut]:
    return [InterestOut(interest=i.interest, score=i.score) for i in ranked[:limit]]


def create_app(config: ServeConfig, run_dir: Path) -> FastAPI:
    """The FastAPI app; the catalog, tokenizer and engine load (and the engine starts) in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = load_state(config, run_dir)
        await state.engine.start()
        app.state.serve = state
        yield
        await state.engine.stop()

    app = FastAPI(title="genrec", summary="generative recommendation by constrained beam search over semantic IDs",
                  lifespan=lifespan)

    def state(request: Request) -> ServeState:
        return request.app.state.serve

    def require_key(request: Request, serve: ServeState = Depends(state)) -> None:
        if serve.api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not given or not secrets.compare_digest(given.encode(), serve.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (send it in the X-API-Key header)")

    def history_of(req: RecommendRequest, serve: ServeState) -> list[str]:
        """The request's history, validated; the 4xx explains what is wrong."""
        if (req.user_id is None) == (req.history is None):
            raise HTTPException(422, "give exactly one of user_id or history")
        if req.user_id is not None:
            if req.user_id not in serve.catalog.histories:
                raise HTTPException(404, f"unknown user_id {req.user_id!r}")
            return serve.catalog.histories[req.user_id]
        history = req.history or []
        if not history:
            raise HTTPException(422, "history is empty: send at least one item id")
        if len(history) > serve.config.max_history:
            raise HTTPException(422, f"history has {len(history)} items; at most {serve.config.max_history} allowed")
        unknown = serve.catalog.unknown_items(history)
        if unknown:
            raise HTTPException(422, f"unknown item id(s) in history: {', '.join(map(repr, unknown[:10]))}")
        return history

    @app.post("/v1/recommend", response_model=RecommendResponse, dependencies=[Depends(require_key)])
    async def recommend(req: RecommendRequest, serve: ServeState = Depends(state)) -> RecommendResponse:
        metrics, started = serve.metrics, time.perf_counter()
        status = 200
        metrics.inflight.inc()
        try:
            if not 1 <= req.k <= serve.config.num_beams:
                raise HTTPException(422, f"k must be between 1 and {serve.config.num_beams} (the beam width), got {req.k}")
            history = history_of(req, serve)
            decoding, m = req.decoding or serve.config.decoding, serve.config.num_interests
            prompt = serve.prompts.ids(history, req.interests)
            why: list[str | None] = [None] * req.k
            groups: dict[tuple[int | None, str], GroupOut] = {}
            if decoding == "interest":
                if req.k < m:
                    raise HTTPException(422, f"decoding=interest needs k >= {m} (one item per interest), got {req.k}")
                recs = await serve.engine.search_interest(prompt, serve.config.num_beams, req.k,
                                                          serve.select_for([req.user_id or ""], [history], req.k),
                                                          serve.config.merge_rule())
                ranked, why = [(r.item, r.score) for r in recs], [r.interest for r in recs]
                for r in recs:
                    code = None if r.code is None else serve.prompts.tokenizer.convert_ids_to_tokens(r.code)
                    groups.setdefault((r.code, r.interest), GroupOut(interest=r.interest, code=code, items=[])
                                      ).items.append(r.item)
            else:
                ranked = await serve.engine.search(prompt, serve.config.num_beams, req.k)
        except HTTPException as exc:
            status = exc.status_code
            raise
        except Exception:
            status = 500
            raise
        finally:
            metrics.inflight.dec()
            metrics.requests.labels(str(status)).inc()
            metrics.latency.observe(time.perf_counter() - started)
        catalog, limit = serve.catalog, serve.config.max_interests
        items = [ItemOut(item_id=item, title=catalog.titles.get(item, ""), sid=catalog.sids[item], score=score,
                         interests=_interests(catalog.item_interests.get(item, []), 3), interest=reason)
                 for (item, score), reason in zip(ranked, why, strict=False)]
        metrics.items.inc(len(items))
        if req.interests:
            explain = [Interest(i, 1.0) for i in req.interests]
        else:
            explain = catalog.explain(req.user_id, history, limit)
        return RecommendResponse(user_id=req.user_id, engine=serve.engine.name, num_beams=serve.config.num_beams,
                                 items=items, interests=_interests(explain, limit),
                                 interest_source="request" if req.interests else catalog.interest_source,
                                 decoding=decoding, groups=list(groups.values()))

    @app.get("/healthz")
    async def healthz(serve: ServeState = Depends(state)) -> dict[str, Any]:
        return {"status": "ok", "engine": serve.engine.name, "items": len(serve.catalog.sids),
                "users": len(serve.catalog.histories)}

    @app.get("/metrics")
    async def metrics(serve: ServeState = Depends(state)) -> Response:
        return Response(generate_latest(serve.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(config: ServeConfig, run_dir: Path) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config, run_dir), host=config.host, port=config.port, log_level="warning")
