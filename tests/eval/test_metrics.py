"""Full-ranking HR@k / NDCG@k against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from genrec.eval.metrics import topk_metrics


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
