"""The mining cache carried between machines: export, import, and a run that then asks nothing."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from genrec.artifacts import RunPaths
from genrec.cli import app
from genrec.mining import BackendConfig, MiningConfig, run
from genrec.mining.cache import MiningCache
from genrec.mining.prompts import Request
from mining_fixtures import SEQUENCES, StandIn

runner = CliRunner()


def _config(server: StandIn, kinds: list[str]) -> MiningConfig:
    backend = BackendConfig(kind="openai", base_url=server.url, model="stand-in", concurrency=2)
    return MiningConfig(backends=[backend], kinds=kinds, max_attempts=2)


def test_exported_users_make_another_machine_ask_only_the_items(server: StandIn, mining_run: Path,
                                                                 tmp_path: Path) -> None:
    run(_config(server, ["item", "user"]), mining_run)
    mined = pd.read_parquet(RunPaths(mining_run).interests)
    exported = tmp_path / "users.jsonl.gz"
    result = runner.invoke(app, ["cache", "export", str(exported), "--set", f"run_dir={mining_run}", "--kind", "user"])
    assert result.exit_code == 0, result.output
    with gzip.open(exported, "rt") as lines:
        rows = [json.loads(line) for line in lines]
    assert sorted(r["entity_id"] for r in rows) == sorted(SEQUENCES) and {r["kind"] for r in rows} == {"user"}

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(mining_run, elsewhere)
    shutil.rmtree(elsewhere / "mine")  # a machine with the data but no answers
    result = runner.invoke(app, ["cache", "import", str(exported), "--set", f"run_dir={elsewhere}"])
    assert result.exit_code == 0, result.output
    assert f"{len(SEQUENCES)} answers taken" in result.output
    server.log.clear()
    run(_config(server, ["item", "user"]), elsewhere)
    asked = [e["text"] for e in server.log]
    assert asked and all("Title:" in t for t in asked)  # item prompts only: every user came from the file
    again = pd.read_parquet(RunPaths(elsewhere).interests)
    users = lambda table: table[table["kind"] == "user"].sort_values(["entity_id", "interest"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(users(again), users(mined))


def _request(entity: str) -> Request:
    return Request("user", entity, "user.j2", "p" * 8, f"in-{entity}", [])


def _cache_with(path: Path, rows: dict[str, tuple[str, int]]) -> MiningCache:
    cache = MiningCache(path)
    for entity, (status, attempts) in rows.items():
        cache.put("b", "m", _request(entity), status, attempts, f"raw {entity} {status}", None, None, 5, 0.5)
    return cache


def test_import_never_overwrites_a_finished_answer(tmp_path: Path) -> None:
    theirs = _cache_with(tmp_path / "theirs.sqlite", {"u0": ("ok", 1), "u1": ("ok", 2), "u2": ("retry", 1),
                                                      "u3": ("failed", 3)})
    theirs.export(tmp_path / "theirs.jsonl.gz")
    ours = _cache_with(tmp_path / "ours.sqlite", {"u0": ("failed", 3), "u1": ("retry", 1), "u2": ("retry", 1)})
    assert ours.import_rows(tmp_path / "theirs.jsonl.gz") == (2, 2)  # u1 finished there, u3 new; u0 ours, u2 a tie
    status = {e: ours.get("b", "m", _request(e)).status for e in ("u0", "u1", "u2", "u3")}  # type: ignore[union-attr]
    assert status == {"u0": "failed", "u1": "ok", "u2": "retry", "u3": "failed"}
    assert ours.get("b", "m", _request("u1")).raw == "raw u1 ok"  # type: ignore[union-attr]


def test_a_bad_line_names_itself_and_imports_nothing(tmp_path: Path) -> None:
    source = _cache_with(tmp_path / "source.sqlite", {"u0": ("ok", 1)})
    exported = tmp_path / "rows.jsonl.gz"
    source.export(exported)
    with gzip.open(exported, "rt") as lines:
        good = lines.read()
    with gzip.open(exported, "wt") as out:
        out.write(good + json.dumps({**json.loads(good), "status": "maybe"}) + "\n")
    target = MiningCache(tmp_path / "target.sqlite")
    with pytest.raises(ValueError, match=r"rows.jsonl.gz:2: .*unknown status 'maybe'"):
        target.import_rows(exported)
    target.close()
    assert MiningCache(tmp_path / "target.sqlite").get("b", "m", _request("u0")) is None
    result = runner.invoke(app, ["cache", "import", str(tmp_path / "missing.jsonl.gz"), "--set", f"run_dir={tmp_path}"])
    assert result.exit_code == 1 and "no exported mining cache" in result.output
    result = runner.invoke(app, ["cache", "export", str(exported), "--set", f"run_dir={tmp_path}", "--kind", "users"])
    assert result.exit_code == 1 and "unknown kind ['users']" in " ".join(result.output.split())
