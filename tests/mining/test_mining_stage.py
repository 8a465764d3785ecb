"""The mining stage end to end through the `openai` backend against a stand-in server over real HTTP."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from genrec.artifacts import RunPaths
from genrec.mining import BackendConfig, MiningConfig, run
from genrec.mining.merge import INTEREST_COLUMNS
from mining_fixtures import ITEMS, PNG, SEQUENCES, StandIn


def _backend(server: StandIn, **kw) -> BackendConfig:
    return BackendConfig(kind="openai", base_url=server.url, model=kw.pop("model", "stand-in"), concurrency=2, **kw)


def test_stage_writes_interests_with_repair_failures_and_rate_limits(server: StandIn, mining_run: Path) -> None:
    manifest = run(MiningConfig(backends=[_backend(server)], max_attempts=2), mining_run)
    table = pd.read_parquet(RunPaths(mining_run).interests)
    assert list(table.columns) == INTEREST_COLUMNS
    assert set(table["kind"]) == {"item", "user"}
    items = set(table.loc[table["kind"] == "item", "entity_id"])
    assert items == {"i0", "i1", "i3", "i4", "i5", "i6", "i7"}  # i2 (GARBAGE) failed, i0 (MALFORMED) repaired
    assert set(table.loc[table["kind"] == "user", "entity_id"]) == {"u0", "u1", "u2", "u3"}
    assert (table["models"].map(list) == pd.Series([["openai:stand-in"]] * len(table))).all()
    assert manifest.counts["failed"] == 1 and manifest.counts["ok"] == 11
    assert manifest.metrics["parse_success_rate"] == pytest.approx(11 / 12, abs=1e-3)
    garbage_asks = [e for e in server.log if "GARBAGE" in e["text"]]
    assert len(garbage_asks) == 2  # bounded retries, the second one sampled
    assert garbage_asks[1]["body"]["temperature"] == 0.7 and garbage_asks[1]["body"]["seed"] == 1
    assert len([e for e in server.log if "FLAKY" in e["text"]]) == 2  # one 429, then answered
    assert server.log[0]["body"]["response_format"]["type"] == "json_schema"
    with sqlite3.connect(RunPaths(mining_run).mining_cache) as db:
        status, raw, error = db.execute("SELECT status, raw, error FROM answers WHERE entity_id='i2'").fetchone()
    assert status == "failed" and "likes things" in raw and "unparseable" in error
    # a second run asks nothing: every answer (and the recorded failure) comes from the cache
    server.log.clear()
    again = run(MiningConfig(backends=[_backend(server)], max_attempts=2), mining_run)
    assert server.log == [] and again.counts["asked_now"] == 0
    assert len(pd.read_parquet(RunPaths(mining_run).interests)) == len(table)
    # its manifest still shows what the answers cost (a retried answer keeps only its last attempt's time)
    assert again.metrics["backends"]["openai:stand-in"]["seconds"] == 0
    assert 0 < again.metrics["llm_seconds"] <= manifest.metrics["llm_seconds"]


def test_user_prompts_show_exactly_the_training_items(server: StandIn, mining_run: Path) -> None:
    run(MiningConfig(backends=[_backend(server)], kinds=["user"]), mining_run)
    titles = {i: t for i, t, _, _ in ITEMS}
    shown = sorted(tuple(re.findall(r"^\d+\. (.+?) \(", e["text"], re.M)) for e in server.log)
    expected = sorted(tuple(titles[i] for i in items[:-2]) for items in SEQUENCES.values())
    assert shown == expected  # chronological training items; validation and test targets never appear


def test_visual_backend_sends_the_local_image_as_base64(server: StandIn, mining_run: Path) -> None:
    manifest = run(MiningConfig(backends=[_backend(server, vision=True, model="vision-stand-in")], kinds=["item"],
                                limit_items=8), mining_run)
    with_image = [e for e in server.log if e["images"]]
    assert len(with_image) == 1 and "Microscope slides" in with_image[0]["text"]
    url = with_image[0]["images"][0]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == PNG
    assert "image" in with_image[0]["text"].lower()  # the visual template, not the text one
    table = pd.read_parquet(RunPaths(mining_run).interests)
    assert table.loc[table["entity_id"] == "i4", "interest"].str.contains("Microscope slides").any()
    assert manifest.counts["items"] == 7


def test_two_models_merge_near_duplicates_with_agreement(server: StandIn, mining_run: Path) -> None:
    backends = [_backend(server, model="alpha"), _backend(server, model="beta")]
    run(MiningConfig(backends=backends, kinds=["item"], limit_items=8, dedup_threshold=0.9), mining_run)
    table = pd.read_parquet(RunPaths(mining_run).interests)
    i1 = table[table["entity_id"] == "i1"]
    shared = i1[i1["interest"] == "Keeping a tidy home lab"]
    assert len(shared) == 1 and shared["agreement"].item() == 2
    assert list(shared["models"].item()) == ["openai:alpha", "openai:beta"]
    own = i1[i1["agreement"] == 1]
    assert {m for ms in own["models"] for m in ms} == {"openai:alpha", "openai:beta"}
    assert len(i1) == 1 + len(own)


def test_killed_batch_resumes_without_asking_twice(server: StandIn, mining_run: Path) -> None:
    server.delay_s = 0.3
    cmd = [sys.executable, "-m", "genrec.cli", "mine", "--set", f"run_dir={mining_run}",
           "--set", "mine.kinds=[item]", "--set", "mine.max_attempts=1",
           "--set", f"mine.backends=[{{kind: openai, base_url: '{server.url}', model: stand-in, concurrency: 1}}]"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = RunPaths(mining_run).mining_cache
    deadline, done = time.time() + 90, 0
    while time.time() < deadline and done < 3:
        time.sleep(0.1)
        if cache.exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(cache) as db:  # table not made yet
                done = db.execute("SELECT count(*) FROM answers").fetchone()[0]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(cache) as db:
        before = {row[0] for row in db.execute("SELECT entity_id FROM answers")}
    assert 3 <= len(before) < len(ITEMS), "the kill should land midway"
    server.log.clear()
    server.delay_s = 0.0
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    titles = {i: t for i, t, _, _ in ITEMS}
    asked_again = {e["text"] for e in server.log}
    assert not [i for i in before if any(titles[i] in text for text in asked_again)], "asked twice"
    assert len(asked_again) == len(ITEMS) - len(before)
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == len(ITEMS)
    assert pd.read_parquet(RunPaths(mining_run).interests)["entity_id"].nunique() == len(ITEMS) - 1
