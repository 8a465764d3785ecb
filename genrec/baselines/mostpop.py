"""MostPop: recommend the items most often bought before the test targets, the same list to everyone."""

from __future__ import annotations

from collections import Counter

import pandas as pd


def interaction_counts(sequences: pd.DataFrame) -> Counter[str]:
    """How often each item occurs among the interactions that precede every test target.

    Every user's items except the last are: the first item (history of the user's first row) plus the
    targets of the train and valid rows.
    """
    known = sequences[sequences["split"] != "test"]
    counts: Counter[str] = Counter(known["target"])
    counts.update(known.groupby("user_id", sort=False)["history"].first().map(lambda h: h[0]))
    return counts


def most_popular(sequences: pd.DataFrame, k: int) -> list[str]:
    """Top-k items by interaction count (ties broken by item id, for determinism)."""
    counts = interaction_counts(sequences)
    return [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
