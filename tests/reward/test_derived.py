"""Derived user interests: unmined users get curated interests of their own training items, never of a
validation or test target, bounded per user and labelled by the reward model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from reward_fixtures import THEMES, TINY_CONFIG, make_themed_run

from genrec.artifacts import RunPaths, read_manifest
from genrec.data import load_sequences, training_items
from genrec.reward import run
from genrec.reward.derived import DERIVED_MODEL


def test_unmined_users_get_their_items_interests(tmp_path: Path) -> None:
    run_dir = make_themed_run(tmp_path)
    mined_path = RunPaths(run_dir).interests
    mined = pd.read_parquet(mined_path)
    unmined = {str(u) for u in range(0, 48, 2)}  # half the users lose their mined interests
    mined = mined[~((mined["kind"] == "user") & mined["entity_id"].isin(unmined))]
    mined.to_parquet(mined_path, index=False)

    run(TINY_CONFIG.model_copy(update={"user_interests_from_items": 2}), run_dir)

    labelled = pd.read_parquet(RunPaths(run_dir).interests_labelled)
    derived = labelled[labelled["models"].map(lambda m: DERIVED_MODEL in list(m))]
    assert len(labelled) - len(derived) == len(mined)
    assert set(derived["kind"]) == {"user"}
    assert set(derived["entity_id"]) <= unmined
    assert len(set(derived["entity_id"])) >= len(unmined) // 2
    assert derived.groupby("entity_id").size().max() <= 2
    assert (derived["label"] == 1).all() and (derived["score"] >= derived["threshold"]).all()

    train = training_items(load_sequences(run_dir))
    item_interests = labelled[(labelled["kind"] == "item") & (labelled["label"] == 1)]
    for user, rows in derived.groupby("entity_id"):
        allowed = set(item_interests.loc[item_interests["entity_id"].isin(train[user]), "interest"])
        assert set(rows["interest"]) <= allowed
        assert rows["score"].is_monotonic_decreasing
    theme_of_interest = {i: theme for theme, (_, interests) in THEMES.items() for i in interests}
    user_theme = {str(u): list(THEMES)[u % len(THEMES)] for u in range(48)}
    assert all(theme_of_interest[i] == user_theme[u] for u, i in zip(derived["entity_id"], derived["interest"]))
    # user 0's test target is the only item with this interest; it must never reach user 0
    assert "reef aquarium water quality" not in set(derived.loc[derived["entity_id"] == "0", "interest"])

    counts = read_manifest(RunPaths(run_dir).stage_dir("label")).counts
    assert counts["derived_interests"] == len(derived)
    assert counts["derived_users"] == derived["entity_id"].nunique()
