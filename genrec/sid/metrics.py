"""Quality of a set of semantic IDs: codebook utilisation, perplexity and the co-consumption check."""

from __future__ import annotations

import numpy as np


def utilisation(codes: np.ndarray, size: int) -> list[float]:
    """Per level, the share of the K codes that at least one item uses."""
    return [round(len(np.unique(codes[:, level])) / size, 4) for level in range(codes.shape[1])]


def perplexity(codes: np.ndarray) -> list[float]:
    """Per level, exp(entropy) of the code usage: how many codes are in effective use (K when items spread
    evenly over all K codes, 1 when every item takes the same code). Utilisation counts a code used by one
    item like one used by a thousand; perplexity does not."""
    out = []
    for level in range(codes.shape[1]):
        p = np.unique(codes[:, level], return_counts=True)[1] / len(codes)
        out.append(round(float(np.exp(-(p * np.log(p)).sum())), 2))
    return out


def co_consumption(first_codes: np.ndarray, baskets: list[list[int]]) -> dict[str, float]:
    """Do items sharing a first-level code get consumed together more often than random pairs?

    `baskets` hold each user's training items (as rows of `first_codes`). Exact over all pairs:
    rate_same = co-consumed pairs sharing a code / pairs sharing a code; rate_random = co-consumed pairs /
    all pairs; ratio = rate_same / rate_random (1 = no signal).
    """
    n = len(first_codes)
    pair_keys = []
    for basket in baskets:
        items = np.unique(np.asarray(basket, np.int64))
        if len(items) < 2:
            continue
        i, j = np.triu_indices(len(items), k=1)
        pair_keys.append(items[i] * n + items[j])
    pairs = np.unique(np.concatenate(pair_keys)) if pair_keys else np.zeros(0, np.int64)
    same = int((first_codes[pairs // n] == first_codes[pairs % n]).sum())
    sizes = np.bincount(first_codes)
    same_total = int((sizes * (sizes - 1) // 2).sum())
    all_total = n * (n - 1) // 2
    rate_same = same / same_total if same_total else 0.0
    rate_random = len(pairs) / all_total if all_total else 0.0
    return {"co_consumed_pairs": int(len(pairs)), "rate_same_code": rate_same, "rate_random": rate_random,
            "ratio": rate_same / rate_random if rate_random else 0.0}
