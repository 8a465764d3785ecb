"""Merging a user's per-interest ranked lists into one list of k distinct items.

- `max_score`: an item's score is its best score under any interest (one full ranking).
- `round_robin`: interests take turns, each adding its best item not yet listed.
- `weighted`: like round robin, but interest i gets slots in proportion to its weight w_i (the next slot goes
  to the interest with the largest w_i / (taken_i + 1), Sainte-Lague style), so a likely interest fills more
  of the top of the list; with equal weights it is round robin.
"""

from __future__ import annotations

import torch

from genrec.multi.config import MergeRule

RULES: tuple[str, ...] = ("round_robin", "max_score", "weighted")


def merge(scores: torch.Tensor, weights: torch.Tensor, rule: MergeRule, k: int) -> torch.Tensor:
    """scores [B, K, N] (per-interest item scores), weights [B, K] -> [B, k] item columns, best first."""
    if rule not in RULES:
        raise ValueError(f"unknown merge rule {rule!r}; choose one of {', '.join(RULES)}")
    if k > scores.shape[2]:
        raise ValueError(f"k={k} exceeds the number of items ({scores.shape[2]})")
    if rule == "max_score":
        return scores.max(dim=1).values.topk(k, dim=1).indices
    ranked = scores.topk(k, dim=2).indices.tolist()  # per interest, k candidates cover every case
    w = weights.clamp_min(1e-9) if rule == "weighted" else torch.ones_like(weights)
    w = w.tolist()
    out = []
    for lists, wts in zip(ranked, w, strict=True):
        out.append(_interleave(lists, wts, k))
    return torch.tensor(out, dtype=torch.int64)


def _interleave(lists: list[list[int]], weights: list[float], k: int) -> list[int]:
    """Take items from the lists in turn (the turn goes to the largest weight / (taken + 1), ties to the
    lower interest index), skipping items already listed."""
    taken = [0] * len(lists)
    cursor = [0] * len(lists)
    seen: set[int] = set()
    merged: list[int] = []
    while len(merged) < k:
        live = [i for i in range(len(lists)) if cursor[i] < len(lists[i])]
        turn = max(live, key=lambda i: (weights[i] / (taken[i] + 1), -i))
        item = lists[turn][cursor[turn]]
        cursor[turn] += 1
        if item in seen:
            continue
        seen.add(item)
        merged.append(item)
        taken[turn] += 1
    return merged
