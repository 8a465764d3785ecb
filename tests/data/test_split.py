"""Leave-one-out split on the tiny LC-Rec fixture: targets, history window, no test target leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genrec.data import DataConfig, prepare, training_items

RAW = {"0": [0, 1, 2, 3, 4], "1": [1, 2, 3], "2": [5, 6, 7, 0, 1, 2], "3": [2, 3, 4, 5], "4": [7, 6, 5],
       "5": [0, 2, 4, 6, 7]}


def _split(folder: Path, max_history: int = 20) -> pd.DataFrame:
    _, sequences, _ = prepare(DataConfig(name="tiny", path=folder, format="lcrec", max_history=max_history))
    return sequences


def _rows(seq: pd.DataFrame, user: str, split: str) -> list[tuple[list[str], str]]:
    rows = seq[(seq["user_id"] == user) & (seq["split"] == split)]
    return [(list(h), t) for h, t in zip(rows["history"], rows["target"], strict=True)]


def test_targets_are_last_and_second_to_last(tiny_lcrec: Path) -> None:
    seq = _split(tiny_lcrec)
    for user, items in RAW.items():
        ids = [str(i) for i in items]
        assert _rows(seq, user, "test") == [(ids[:-1], ids[-1])]
        assert _rows(seq, user, "valid") == [(ids[:-2], ids[-2])]
        assert _rows(seq, user, "train") == [(ids[:t], ids[t]) for t in range(1, len(ids) - 2)]
    assert (seq["split"] == "test").sum() == len(RAW)
    assert (seq["split"] == "train").sum() == sum(len(s) - 3 for s in RAW.values())


def test_history_window_keeps_most_recent(tiny_lcrec: Path) -> None:
    seq = _split(tiny_lcrec, max_history=2)
    assert _rows(seq, "2", "train") == [(["5"], "6"), (["5", "6"], "7"), (["6", "7"], "0")]
    assert _rows(seq, "2", "valid") == [(["7", "0"], "1")]
    assert _rows(seq, "2", "test") == [(["0", "1"], "2")]
    assert seq["history"].map(len).max() == 2


def test_no_test_target_in_train_or_valid_rows(tiny_lcrec: Path) -> None:
    seq = _split(tiny_lcrec)
    test_target = dict(zip(seq.loc[seq["split"] == "test", "user_id"], seq.loc[seq["split"] == "test", "target"],
                           strict=True))
    valid_target = dict(zip(seq.loc[seq["split"] == "valid", "user_id"], seq.loc[seq["split"] == "valid", "target"],
                            strict=True))
    for row in seq[seq["split"] != "test"].itertuples():
        assert test_target[row.user_id] not in [*row.history, row.target]
    for row in seq[seq["split"] == "train"].itertuples():
        assert valid_target[row.user_id] not in [*row.history, row.target]


def test_training_items_exclude_valid_and_test_targets(tiny_lcrec: Path) -> None:
    train = training_items(_split(tiny_lcrec))
    assert train == {u: [str(i) for i in items[:-2]] for u, items in RAW.items()}


@pytest.mark.parametrize("short", [[1], [1, 2]])
def test_users_with_fewer_than_three_items_are_dropped(tiny_lcrec: Path, short: list[int]) -> None:
    inter = tiny_lcrec / "Tiny.inter.json"
    raw = json.loads(inter.read_text())
    raw["short"] = short
    inter.write_text(json.dumps(raw))
    seq = _split(tiny_lcrec)
    assert "short" not in set(seq["user_id"])
