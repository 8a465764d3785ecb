"""MostPop counts only interactions before the test targets (a leakage test) and is deterministic."""

from __future__ import annotations

from pathlib import Path

from genrec.baselines import BaselinesConfig, run
from genrec.baselines.mostpop import interaction_counts, most_popular
from genrec.data import DataConfig
from genrec.data import run as prepare_data
from genrec.data.split import leave_one_out
from genrec.eval.recs import read_recs


def _sequences():
    # "z" is every user's test target and appears nowhere else: counting test targets would rank it first.
    raw = {f"u{n}": ["a", "b", "c", "d", "z"] for n in range(4)}
    raw["v"] = ["b", "c", "e", "z"]
    return leave_one_out(raw, max_history=20)


def test_counts_exclude_test_targets() -> None:
    counts = interaction_counts(_sequences())
    assert "z" not in counts
    # every interaction before the test target counted exactly once (first item, train and valid targets)
    assert counts == {"a": 4, "b": 5, "c": 5, "d": 4, "e": 1}


def test_ranking_and_ties() -> None:
    assert most_popular(_sequences(), 10) == ["b", "c", "a", "d", "e"]
    assert most_popular(_sequences(), 2) == ["b", "c"]


def test_stage_writes_same_list_for_every_test_user(tiny_lcrec: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    prepare_data(DataConfig(name="tiny", path=tiny_lcrec, format="lcrec"), run_dir)
    manifest = run(BaselinesConfig(systems=["mostpop"], k=10), run_dir)
    recs = read_recs(run_dir / "eval" / "mostpop" / "recs.jsonl", min_items=8)
    assert set(recs) == {str(u) for u in range(6)}
    assert len({tuple(v) for v in recs.values()}) == 1
    assert manifest.counts["mostpop_users"] == 6
