"""Full-ranking HR@k / NDCG@k against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from genrec.eval.metrics import ensemble_report, paired_difference, topk_metrics, user_ndcg


def test_hand_computed_ranks() -> None:
    ranked = [f"i{j}" for j in range(12)]
    recs = {"a": ranked, "b": ranked, "c": ranked, "d": ranked}
    # a: rank 0, b: rank 4 (last of top 5), c: rank 7 (top 10 only), d: absent from the list.
    targets = {"a": "i0", "b": "i4", "c": "i7", "d": "zzz"}
    m = topk_metrics(recs, targets, ks=[5, 10])
    assert m["hr@5"] == pytest.approx(2 / 4)
    assert m["hr@10"] == pytest.approx(3 / 4)
    assert m["ndcg@5"] == pytest.approx((1.0 + 1 / math.log2(6)) / 4, abs=1e-6)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(6) + 1 / math.log2(9)) / 4, abs=1e-6)


def test_rank_just_outside_k_is_a_miss() -> None:
    ranked = [f"i{j}" for j in range(10)]
    m = topk_metrics({"u": ranked}, {"u": "i5"}, ks=[5, 10])
    assert m["hr@5"] == 0.0 and m["ndcg@5"] == 0.0
    assert m["hr@10"] == 1.0
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(7), abs=1e-6)


def test_user_without_recs_counts_as_miss() -> None:
    m = topk_metrics({"u": ["x"] * 10}, {"u": "x", "v": "y"}, ks=[10])
    assert m["hr@10"] == pytest.approx(0.5)
    assert m["ndcg@10"] == pytest.approx(0.5)


def test_no_targets_is_an_error() -> None:
    with pytest.raises(ValueError, match="no evaluation targets"):
        topk_metrics({}, {})


def test_user_ndcg_matches_the_mean_and_counts_misses() -> None:
    recs = {"u1": ["a", "b", "c"], "u2": ["d", "e"], "u3": ["z"] * 11}
    targets = {"u1": "c", "u2": "e", "u3": "q", "u4": "a"}  # u3 misses, u4 has no recs
    per_user = user_ndcg(recs, targets)
    assert per_user == pytest.approx({"u1": 1 / math.log2(4), "u2": 1 / math.log2(3), "u3": 0.0, "u4": 0.0})
    assert sum(per_user.values()) / len(per_user) == pytest.approx(topk_metrics(recs, targets)["ndcg@10"], abs=1e-6)
    assert user_ndcg({"u1": [f"i{n}" for n in range(10)] + ["c"]}, {"u1": "c"})["u1"] == 0.0  # rank 11: outside k


def test_paired_difference_interval_and_shared_users() -> None:
    base = {f"u{n}": 0.0 for n in range(200)}
    better = {u: (1.0 if n % 2 else 0.0) for n, u in enumerate(base)}  # half the users gain a top-1 hit
    result = paired_difference(better, base)
    assert result["ndcg@10_diff"] == pytest.approx(0.5) and result["users"] == 200 and result["users_changed"] == 100
    assert 0 < result["ci95_low"] < 0.5 < result["ci95_high"] < 1
    same = paired_difference(base, base)
    assert same["ndcg@10_diff"] == same["ci95_low"] == same["ci95_high"] == 0.0 and same["users_changed"] == 0
    assert paired_difference({"u1": 1.0, "other": 0.0}, {"u1": 0.5})["users"] == 1  # only shared users count
    with pytest.raises(ValueError, match="share no users"):
        paired_difference({"a": 1.0}, {"b": 1.0})


def test_ensemble_report_scores_every_system_and_pairs_the_ensemble_with_the_others() -> None:
    targets = {"u1": "a", "u2": "b"}
    systems = {"one": {"u1": ["a"], "u2": ["x"]}, "two": {"u1": ["x", "a"], "u2": ["b"]},
               "both": {"u1": ["a"], "u2": ["b"]}}
    report = ensemble_report(systems, targets, "both")
    assert set(report["metrics"]) == {"one", "two", "both"} and report["metrics"]["both"]["ndcg@10"] == 1.0
    assert set(report["ensemble_vs"]) == {"one", "two"}
    assert report["ensemble_vs"]["one"]["ndcg@10_diff"] == 0.5  # u2: 1 - 0
    assert report["ensemble_vs"]["two"]["users_changed"] == 1  # u1 only: rank 2 -> 1
