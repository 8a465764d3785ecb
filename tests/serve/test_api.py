"""The recommendation endpoint, over real HTTP against `genrec serve` on 127.0.0.1 (hf and vllm engines)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pandas as pd
import pytest

from genrec.artifacts import RunPaths

Server = Any  # tests/serve/conftest.py: url, run_dir, engine, headers, api_key, n_items


def recommend(server: Server, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/recommend", json=body, headers=server.headers if headers is None else headers,
                      timeout=60)


def test_healthz(server: Server) -> None:
    reply = httpx.get(f"{server.url}/healthz", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "engine": server.engine, "items": server.n_items, "users": 12}


def test_recommend_known_user(server: Server) -> None:
    reply = recommend(server, {"user_id": "0", "k": 5})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["engine"] == server.engine and body["user_id"] == "0" and body["num_beams"] == 12
    sids = pd.read_parquet(RunPaths(server.run_dir).sid_map).set_index("item_id")["sid"]
    items = body["items"]
    assert len(items) == 5 and len({i["item_id"] for i in items}) == 5
    for item in items:
        assert item["sid"] == sids[item["item_id"]] and item["title"] == f"item {item['item_id']}"
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)
    # curated (label 1) user interests, best first; the rejected one is not shown
    assert [i["interest"] for i in body["interests"]] == ["field chemistry", "lab safety"]
    assert body["interest_source"] == "label/interests_labelled.parquet"


def test_recommend_matches_offline_hf_beam_search(server: Server) -> None:
    """The served ranking for a history is transformers' constrained beam search on the same prompt."""
    from genrec.decode.hf_beam import constrained_beam_search
    from genrec.decode.trie import SidTrie
    from genrec.model import build_prompt_ids, load_checkpoint

    paths = RunPaths(server.run_dir)
    model, tokenizer, info = load_checkpoint(paths.sft_ckpt)
    sid_map = pd.read_parquet(paths.sid_map)
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    sids = dict(zip(sid_map["item_id"], sid_map["sid"], strict=True))
    histories = [["1", "2"], ["7", "3", "30", "11"], ["39"]]
    prompts = [build_prompt_ids(tokenizer, info, [sids[i] for i in h]) for h in histories]
    expected = constrained_beam_search(model, prompts, trie, num_beams=12, k=12, batch_size=3)
    for history, want in zip(histories, expected, strict=True):
        reply = recommend(server, {"history": history, "k": 12})
        assert reply.status_code == 200, reply.text
        got = [(i["item_id"], i["score"]) for i in reply.json()["items"]]
        assert [i for i, _ in got] == [i for i, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-4)


def test_interest_decoding_groups_items_by_interest(server: Server) -> None:
    """`decoding: interest` (default merge: coverage): the offline interest-conditioned search's items, each with
    its interest (a chosen code's category, or HISTORY_ONLY for a plain-beam item outside them), and the groups
    (one per interest and first-level code) partition them."""
    from genrec.decode.hf_beam import interest_beam_search
    from genrec.decode.interest import HISTORY_ONLY
    from genrec.decode.interest_sources import interest_selector
    from genrec.serve.config import ServeConfig
    from genrec.decode.trie import SidTrie
    from genrec.model import build_prompt_ids, load_checkpoint

    paths = RunPaths(server.run_dir)
    model, tokenizer, info = load_checkpoint(paths.sft_ckpt)
    sid_map = pd.read_parquet(paths.sid_map)
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    sids = dict(zip(sid_map["item_id"], sid_map["sid"], strict=True))
    history = ["7", "3", "30", "11"]
    select_for, _ = interest_selector("codes", 4, 12, server.run_dir, sid_map, tokenizer, [])
    want = interest_beam_search(model, [build_prompt_ids(tokenizer, info, [sids[i] for i in history])], trie,
                                num_beams=12, k=8, batch_size=1, select=select_for([""], [history], 8),
                                rule=ServeConfig().merge_rule())[0]
    reply = recommend(server, {"history": history, "k": 8, "decoding": "interest"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["decoding"] == "interest"
    assert [(i["item_id"], i["interest"]) for i in body["items"]] == [(r.item, r.interest) for r in want]
    assert [i["score"] for i in body["items"]] == pytest.approx([r.score for r in want], abs=1e-4)
    assert sorted(i for g in body["groups"] for i in g["items"]) == sorted(i["item_id"] for i in body["items"])
    assert len(body["groups"]) >= 4 and {g["interest"] for g in body["groups"]} <= {"c", HISTORY_ONLY}  # category
    for group in body["groups"]:
        assert all(sids[i].startswith(group["code"]) for i in group["items"])
    assert recommend(server, {"history": history, "k": 8}).json()["groups"] == []  # beam stays the default
    reply = recommend(server, {"history": history, "k": 3, "decoding": "interest"})
    assert reply.status_code == 422 and "k >= 4" in reply.text


def test_request_interests_explain_history_requests(server: Server) -> None:
    reply = recommend(server, {"history": ["3", "4"], "k": 3, "interests": ["microscopy"]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["user_id"] is None and body["interest_source"] == "request"
    assert [i["interest"] for i in body["interests"]] == ["microscopy"]
    # without request interests, a history is explained by its items' interests
    body = recommend(server, {"history": ["3", "4"], "k": 3}).json()
    assert [i["interest"] for i in body["interests"]] == ["precise measuring"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"user_id": "nobody", "k": 5}, 404, "unknown user_id 'nobody'"),
    ({"history": ["1", "x9", "x9", "y"], "k": 5}, 422, "unknown item id(s) in history: 'x9', 'y'"),
    ({"history": [], "k": 5}, 422, "history is empty"),
    ({"history": ["1"] * 31, "k": 5}, 422, "history has 31 items; at most 30"),
    ({"user_id": "0", "k": 0}, 422, "k must be between 1 and 12"),
    ({"user_id": "0", "k": 13}, 422, "k must be between 1 and 12"),
    ({"user_id": "0", "history": ["1"], "k": 5}, 422, "exactly one of user_id or history"),
    ({"k": 5}, 422, "exactly one of user_id or history"),
])
def test_bad_requests_name_the_problem(server: Server, body: dict, status: int, message: str) -> None:
    reply = recommend(server, body)
    assert reply.status_code == status
    assert message in reply.json()["detail"]


def test_malformed_bodies_are_422(server: Server) -> None:
    assert recommend(server, {"user_id": "0", "k": "many"}).status_code == 422
    reply = recommend(server, {"user_id": "0", "top": 3})
    assert reply.status_code == 422 and "top" in reply.text


def test_api_key(server: Server) -> None:
    assert recommend(server, {"user_id": "0"}, headers={}).status_code == 401
    assert recommend(server, {"user_id": "0"}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert recommend(server, {"user_id": "0"}, headers={"Authorization": f"Bearer {server.api_key}"}).status_code == 200


def test_concurrent_requests_all_valid_and_deterministic(server: Server) -> None:
    histories = [[str((3 * n + j) % server.n_items) for j in range(1 + n % 5)] for n in range(24)]

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=120) as client:
            return await asyncio.gather(*(client.post("/v1/recommend", json={"history": h, "k": 10})
                                          for h in histories))

    replies = asyncio.run(fire())
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    for history, reply in zip(histories[:4], replies[:4], strict=True):
        alone = recommend(server, {"history": history, "k": 10}).json()["items"]
        assert [i["item_id"] for i in reply.json()["items"]] == [i["item_id"] for i in alone]
    for reply in replies:
        ids = [i["item_id"] for i in reply.json()["items"]]
        assert len(ids) == 10 == len(set(ids)) and all(0 <= int(i) < server.n_items for i in ids)


def test_metrics_count_requests(server: Server) -> None:
    recommend(server, {"user_id": "0", "k": 2})
    recommend(server, {"user_id": "nobody", "k": 2})
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'genrec_requests_total{status="200"}' in text and 'genrec_requests_total{status="404"}' in text
    assert f'genrec_engine_info{{engine="{server.engine}"}} 1.0' in text
    assert "genrec_request_seconds_bucket" in text
