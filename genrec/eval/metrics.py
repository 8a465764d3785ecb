"""Full-ranking top-k metrics: HR@k and NDCG@k with one relevant item per user (leave-one-out)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

DEFAULT_KS = (5, 10)


def rank_of(target: str, ranked: Sequence[str]) -> int | None:
    """0-based position of `target` in `ranked`, or None when absent."""
    try:
        return list(ranked).index(target)
    except ValueError:
        return None


def topk_metrics(recs: Mapping[str, Sequence[str]], targets: Mapping[str, str],
                 ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean HR@k and NDCG@k over every user in `targets` (a user with no recs counts as a miss).

    With a single relevant item, NDCG@k = 1 / log2(rank + 2) when the item is within the top k.
    """
    if not targets:
        raise ValueError("no evaluation targets")
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("hr", "ndcg")}
    for user, target in targets.items():
        rank = rank_of(target, recs.get(user, ()))
        if rank is None:
            continue
        for k in ks:
            if rank < k:
                sums[f"hr@{k}"] += 1.0
                sums[f"ndcg@{k}"] += 1.0 / math.log2(rank + 2)
    n = len(targets)
    return {name: round(value / n, 6) for name, value in sorted(sums.items())}


def user_ndcg(recs: Mapping[str, Sequence[str]], targets: Mapping[str, str], k: int = 10) -> dict[str, float]:
    """Per-user NDCG@k (0 for a miss or a user without recs): the units a paired comparison is made of."""
    ndcg = {}
    for user, target in targets.items():
        rank = rank_of(target, list(recs.get(user, ()))[:k])
        ndcg[user] = 0.0 if rank is None else 1.0 / math.log2(rank + 2)
    return ndcg


def paired_difference(variant: Mapping[str, float], base: Mapping[str, float]) -> dict[str, float]:
    """Mean per-user difference (variant - base) on the users both were scored on, with a normal-approximation 95%
    interval: two systems ranked for the same users differ far less noisily than their separate means suggest."""
    diffs = [variant[u] - base[u] for u in variant if u in base]
    if not diffs:
        raise ValueError("paired_difference: the two systems share no users")
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / max(n - 1, 1))
    half = 1.96 * sd / math.sqrt(n)
    return {"ndcg@10_diff": round(mean, 6), "ci95_low": round(mean - half, 6), "ci95_high": round(mean + half, 6),
            "users_changed": sum(d != 0 for d in diffs), "users": n}


def ensemble_report(systems: Mapping[str, Mapping[str, Sequence[str]]], targets: Mapping[str, str],
                    ensemble: str) -> dict[str, dict]:
    """What a seed-ensemble benchmark records: every system's top-k metrics (`metrics`) and the paired NDCG@10
    difference of the system named `ensemble` to each other one (`ensemble_vs`)."""
    per_user = {name: user_ndcg(recs, targets) for name, recs in systems.items()}
    return {"metrics": {name: topk_metrics(recs, targets) for name, recs in systems.items()},
            "ensemble_vs": {name: paired_difference(per_user[ensemble], per_user[name]) for name in systems
                            if name != ensemble}}
