"""Leave-one-out split with a bounded history window (the TIGER / LC-Rec protocol).

Per user, chronological: last item = test target, second-to-last = validation target, the rest are
training items and every prefix of them is a training example. Histories keep the most recent
`max_history` items. The test row's history includes the validation item (it is not a test target).
"""

from __future__ import annotations

import pandas as pd

SEQUENCE_COLUMNS = ["user_id", "split", "history", "target"]


def leave_one_out(sequences: dict[str, list[str]], max_history: int) -> pd.DataFrame:
    """One row per (user, split, target): train rows for every training prefix, one valid, one test."""
    rows = []
    for user, items in sequences.items():
        if len(items) < 3:
            continue
        n = len(items)
        for t in range(1, n - 2):
            rows.append((user, "train", items[max(0, t - max_history):t], items[t]))
        rows.append((user, "valid", items[max(0, n - 2 - max_history):n - 2], items[n - 2]))
        rows.append((user, "test", items[max(0, n - 1 - max_history):n - 1], items[n - 1]))
    return pd.DataFrame(rows, columns=SEQUENCE_COLUMNS)


def training_items(sequences: pd.DataFrame) -> dict[str, list[str]]:
    """Each user's training items (chronological, windowed): the validation row's history.

    This is what mining, labelling and SID stages may look at: it never contains a valid or test target.
    """
    valid = sequences[sequences["split"] == "valid"]
    return {u: list(h) for u, h in zip(valid["user_id"], valid["history"], strict=True)}


def statistics(raw_sequences: dict[str, list[str]], split: pd.DataFrame, n_items: int) -> dict[str, int]:
    """Counts printed by `genrec data prepare` and stored in the manifest."""
    users = split["user_id"].nunique()
    interactions = sum(len(s) for s in raw_sequences.values())
    counts = {"users": int(users), "items": int(n_items), "interactions": int(interactions)}
    for name in ("train", "valid", "test"):
        counts[f"{name}_rows"] = int((split["split"] == name).sum())
    return counts
