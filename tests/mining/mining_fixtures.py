"""Builders for mining tests (the fixtures in conftest.py wrap them): a tiny dataset with an image, and a stand-in OpenAI chat-completions server.

The stand-in speaks the real protocol over real HTTP on 127.0.0.1 (FastAPI + uvicorn in a thread). It answers
from the prompt so tests can check what arrived: titles containing MALFORMED get JSON with slips a repair
fixes, GARBAGE gets prose that never parses, FLAKY gets one 429 (Retry-After: 0) first. Every request is logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from genrec.data import DataConfig
from genrec.data import run as run_data

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@dataclass
class StandIn:
    """What the stand-in server saw."""

    url: str
    log: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    flaky_seen: set[str] = field(default_factory=set)


def _user_text(messages: list[dict[str, Any]]) -> tuple[str, list[str]]:
    content = messages[-1]["content"]
    if isinstance(content, str):
        return content, []
    text = "\n".join(p["text"] for p in content if p["type"] == "text")
    return text, [p["image_url"]["url"] for p in content if p["type"] == "image_url"]


def _answer(text: str, model: str) -> str:
    titles = re.findall(r"Title: (.+)", text) or re.findall(r"^\d+\. ([^(\n]+)", text, re.M)
    subject = titles[0].strip() if titles else "unknown"
    interests = [{"interest": f"{model} interest {k} in {subject}"[:50], "evidence": subject[:80]} for k in range(3)]
    interests.append({"interest": "Keeping a tidy home lab", "evidence": "shared by every model"})
    body = json.dumps({"reasoning": f"Someone buying {subject} for a project."[:200], "interests": interests})
    if "MALFORMED" in text:
        return "Sure! Here is the JSON:\n```json\n" + body[:-2] + ",]}\n```\nHope this helps."
    if "GARBAGE" in text:
        return "I think this person likes things. " * 5
    return body


def _app(state: StandIn) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        text, images = _user_text(body["messages"])
        digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
        state.log.append({"digest": digest, "text": text, "images": images, "body": body, "time": time.time()})
        if "FLAKY" in text and digest not in state.flaky_seen:
            state.flaky_seen.add(digest)
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "0"})
        if state.delay_s:
            time.sleep(state.delay_s)  # blocks the loop on purpose: one request at a time
        content = _answer(text, body["model"])
        return JSONResponse({"id": "x", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": len(content.split()), "total_tokens": 0}})

    return app


@pytest.fixture(scope="session")
def stand_in() -> Iterator[StandIn]:
    """A stand-in OpenAI-compatible server on 127.0.0.1 (shared by the session; reset the log per test)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state = StandIn(url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1")
    server = uvicorn.Server(uvicorn.Config(_app(state), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield state
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def server(stand_in: StandIn) -> StandIn:
    stand_in.log.clear()
    stand_in.delay_s = 0.0
    stand_in.flaky_seen.clear()
    return stand_in


ITEMS = [
    ("i0", "Digital caliper MALFORMED", "Measures to 0.01 mm.", None),
    ("i1", "Soldering station", "Temperature controlled, 60 W.", None),
    ("i2", "Lab notebook GARBAGE", "Grid paper, 100 pages.", None),
    ("i3", "Safety goggles FLAKY", "Anti-fog, ANSI Z87.1.", None),
    ("i4", "Microscope slides", "Pre-cleaned glass, 72 pieces.", "IMAGE"),
    ("i5", "Pipette tips", "Sterile, 1000 uL.", None),
    ("i6", "Nitrile gloves", "Powder free, size M.", None),
    ("i7", "Beaker set", "Borosilicate glass, 5 sizes.", None),
]
# user -> chronological items; the last two are the valid and test targets.
SEQUENCES = {"u0": ["i1", "i5", "i6", "i7", "i0"], "u1": ["i4", "i5", "i1", "i2", "i3"],
             "u2": ["i6", "i7", "i1", "i5", "i4", "i2"], "u3": ["i0", "i1", "i6", "i5", "i7"]}


@pytest.fixture
def mining_run(tmp_path: Path) -> Path:
    """A prepared run folder: 8 lab items (one with a local image), 4 users."""
    (tmp_path / "slide.png").write_bytes(PNG)
    rows = ["user_id,item_id,timestamp"]
    for user, items in SEQUENCES.items():
        rows += [f"{user},{item},{t}" for t, item in enumerate(items)]
    (tmp_path / "inter.csv").write_text("\n".join(rows) + "\n")
    meta = [{"item_id": i, "title": t, "description": d, "brand": "LabCo", "categories": "Lab > Tools",
             **({"image": str(tmp_path / "slide.png")} if img else {})} for i, t, d, img in ITEMS]
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(m) for m in meta) + "\n")
    run_dir = tmp_path / "run"
    run_data(DataConfig(name="lab", interactions=tmp_path / "inter.csv", item_meta=tmp_path / "items.jsonl"), run_dir)
    return run_dir
