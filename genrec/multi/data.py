"""Training examples, evaluation rows and item categories for the multi-interest models.

Every example is (history, next item) over a user's training items; histories keep the last `max_len`
items, so with 20 they equal the split's rows and ULIM can look further back (still training items only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genrec.data.tensors import encode, left_pad, user_training_items


@dataclass
class Examples:
    """Left-padded histories [n, L] and target rows [n] (1-based item rows); `users` for eval rows."""

    histories: torch.Tensor
    targets: torch.Tensor
    users: list[str]


@dataclass
class SplitTensors:
    train: Examples
    valid: Examples
    test: Examples
    longest_history: int


def build_examples(sequences: pd.DataFrame, index: dict[str, int], max_len: int) -> SplitTensors:
    """Train examples at every training position; valid = all training items -> valid target; test = the
    same plus the valid target -> test target. Histories are padded to min(max_len, longest history)."""
    full = user_training_items(sequences)
    valid = sequences[sequences["split"] == "valid"]
    test = sequences[sequences["split"] == "test"].set_index("user_id")
    if valid.empty:
        raise ValueError("sequences.parquet: no valid rows to train a multi-interest model on")
    train_h, train_t, valid_h, valid_t, test_h, test_t, users = [], [], [], [], [], [], []
    for user, history, target in zip(valid["user_id"].astype(str), valid["history"], valid["target"], strict=True):
        items = encode(full.get(user, list(history)), index)
        for t in range(1, len(items)):
            train_h.append(items[max(0, t - max_len):t])
            train_t.append(items[t])
        valid_row = encode([target], index)[0]
        valid_h.append(items[-max_len:])
        valid_t.append(valid_row)
        test_h.append([*items, valid_row][-max_len:])
        test_t.append(encode([test.loc[user, "target"]], index)[0])
        users.append(user)
    if not train_h:
        raise ValueError("sequences.parquet: no training transitions to fit a multi-interest model on")
    longest = max(len(h) for h in test_h)
    length = min(max_len, longest)

    def pack(hist: list[list[int]], targets: list[int], who: list[str]) -> Examples:
        return Examples(left_pad(hist, length), torch.tensor(targets, dtype=torch.int64), who)

    return SplitTensors(pack(train_h, train_t, []), pack(valid_h, valid_t, users), pack(test_h, test_t, users), longest)


def metadata_categories(items: pd.DataFrame, depth: int) -> list[str] | None:
    """Each item's category path cut to `depth` levels ("a > b > c" or "a,b,c"), or None when no item has one."""
    raw = items["categories"].fillna("").astype(str) if "categories" in items else pd.Series([""] * len(items))
    if not raw.str.strip().any():
        return None
    return [" > ".join([p.strip() for p in re.split(r">|,", text) if p.strip()][:depth]) or "(none)" for text in raw]


def sid_categories(items: pd.DataFrame, sid_map: Path) -> list[str]:
    """Each item's first-level SID code, as `a_<code>`."""
    if not sid_map.is_file():
        raise FileNotFoundError(f"{sid_map} not found: multi.categories=sid needs the sid stage's map "
                                "(or item metadata with categories)")
    frame = pd.read_parquet(sid_map)
    first = dict(zip(frame["item_id"].astype(str), (f"a_{int(codes[0])}" for codes in frame["codes"]), strict=True))
    missing = [i for i in items["item_id"].astype(str) if i not in first]
    if missing:
        raise ValueError(f"{sid_map}: {len(missing)} items have no SID, e.g. {missing[:5]}")
    return [first[i] for i in items["item_id"].astype(str)]


def category_indices(names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Category names -> indices 1..C (sorted names, deterministic) and the vocabulary."""
    vocab = sorted(set(names))
    lookup = {name: i + 1 for i, name in enumerate(vocab)}
    return np.array([lookup[n] for n in names], dtype=np.int64), vocab
