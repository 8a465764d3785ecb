"""`scripts/compare_seeds.py`: per-user NDCG@10 averaged over seeds, and a run that skipped users is refused."""

from __future__ import annotations

import math

import pytest

from genrec.eval.recs import write_recs
from test_report_scripts import load_script

FILLER = [f"f{i}" for i in range(9)]


def test_seed_mean_averages_each_users_ndcg(tmp_path):
    compare = load_script("compare_seeds")
    targets = {"u1": "a", "u2": "b"}
    first, second = tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"
    write_recs(first, [("u1", ["a", *FILLER]), ("u2", ["b", *FILLER])])  # both hit at rank 1
    write_recs(second, [("u1", [*FILLER, "a"]), ("u2", ["x", *FILLER])])  # u1 at rank 10, u2 missed
    mean = compare.seed_mean_ndcg([first, second], targets)
    assert mean["u1"] == pytest.approx((1.0 + 1.0 / math.log2(11)) / 2)
    assert mean["u2"] == pytest.approx(0.5)


def test_a_seed_without_some_users_is_named(tmp_path):
    compare = load_script("compare_seeds")
    partial = tmp_path / "partial.jsonl"
    write_recs(partial, [("u1", ["a", *FILLER])])
    with pytest.raises(ValueError, match="partial.jsonl: no recommendations for 1 test users"):
        compare.seed_mean_ndcg([partial], {"u1": "a", "u2": "b"})
