"""`scripts/mining_stats.py` on a mining cache written by the real cache class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrec.mining.cache import MiningCache
from genrec.mining.prompts import Request
from genrec.mining.schema import parse_answer
from test_report_scripts import load_script


def _put(cache: MiningCache, entity: str, status: str, interests: list[str], seconds: float = 2.0) -> None:
    raw = json.dumps({"reasoning": "The customer builds small robots at home.",
                      "interests": [{"interest": i, "evidence": "kit"} for i in interests]})
    parsed = parse_answer(raw).model_dump() if status == "ok" else None
    request = Request("user", entity, "user_interest.jinja", "p", f"in-{entity}", [])
    cache.put("vllm", "m", request, status, 1 if status == "ok" else 3, raw, parsed, None, 40, seconds)


def test_counts_rates_and_quality_signs(tmp_path: Path) -> None:
    cache = MiningCache(tmp_path / "mining.sqlite")
    long = "Building a robot that sorts the screws in a drawer"  # 50 characters: the cap
    _put(cache, "u0", "ok", ["robotics", "robotics", "robotics"])
    _put(cache, "u1", "ok", ["The customer likes tools", long, "home workshop"])
    _put(cache, "u2", "failed", [])
    _put(cache, "u3", "retry", [])
    cache.put("vllm", "m", Request("item", "i0", "item_interest.jinja", "p", "in-i0", []), "ok", 1, "{}", None, None, 9, 9.0)
    cache.close()
    stats = load_script("mining_stats").mining_stats(tmp_path / "mining.sqlite", "user")
    assert (stats["answers"], stats["ok"], stats["failed"], stats["waiting_for_retry"]) == (3, 2, 1, 1)
    assert stats["parse_success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert stats["per_s"] == pytest.approx(4 / 8.0) and stats["tokens_per_s"] == pytest.approx(160 / 8.0)
    assert stats["interests"] == 4 and stats["distinct_interests_per_answer"] == 2.0  # the parser merged the repeats
    assert stats["answers_repeating_an_interest"] == 1
    assert stats["boilerplate_share"] == 0.25 and stats["at_length_cap_share"] == 0.25
    with pytest.raises(FileNotFoundError, match="no mining cache"):
        load_script("mining_stats").mining_stats(tmp_path / "nope.sqlite", "user")
