"""Torch views of the split for the item-ID retrievers (SASRec, the multi-interest models).

Items become embedding rows 1..N (0 is padding); each user's training items are rebuilt from the `train`
rows (first history item + every train target, in row order), which never contain a valid or test target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

PAD = 0


def item_index(items: pd.DataFrame) -> dict[str, int]:
    """item id -> embedding row (1-based; 0 is padding)."""
    return {item: i + 1 for i, item in enumerate(items["item_id"].astype(str))}


def encode(history: list[str], index: dict[str, int]) -> list[int]:
    """Item ids -> embedding rows, naming the first id that is not in the item table."""
    try:
        return [index[i] for i in history]
    except KeyError as exc:
        raise ValueError(f"sequences.parquet: item id {exc.args[0]!r} is not in items.parquet") from None


def left_pad(rows: list[list[int]], length: int) -> torch.Tensor:
    """[len(rows), length] int64, each row's last `length` entries right-aligned, zeros before."""
    out = np.zeros((len(rows), length), dtype=np.int64)
    for r, row in enumerate(rows):
        row = row[-length:]
        if row:
            out[r, length - len(row):] = row
    return torch.from_numpy(out)


def user_training_items(sequences: pd.DataFrame) -> dict[str, list[str]]:
    """Each user's training items, chronological and unwindowed (longer than the rows' 20-item histories)."""
    train = sequences[sequences["split"] == "train"]
    return {str(user): [rows["history"].iloc[0][0], *rows["target"]]
            for user, rows in train.groupby("user_id", sort=False)}


def ndcg_at(top: torch.Tensor, targets: torch.Tensor, k: int = 10) -> float:
    """Mean NDCG@k of [U, >=k] ranked item rows with one relevant item per row (the early-stopping metric)."""
    hits = top[:, :k] == targets[:, None]
    gains = hits.float() / torch.log2(torch.arange(k, dtype=torch.float32) + 2)
    return float(gains.sum(1).mean())
