"""Prompt inputs read from the run folder, shared by training, `recommend` and serving: item SIDs and the
users' curated interests (so every consumer builds the same prompts from the same artifacts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from genrec.model.sid_tokens import parse_sid


def read_sid_map(path: Path) -> pd.DataFrame:
    """`sid_map.parquet` with string item ids, checked: required columns, one SID length, unique SIDs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sid map not found: {path} (run `genrec sid` first)")
    df = pd.read_parquet(path)
    missing = {"item_id", "sid"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    df = df.assign(item_id=df["item_id"].astype(str))
    levels = {len(parse_sid(s)) for s in df["sid"]}
    if len(levels) != 1:
        raise ValueError(f"{path}: SIDs have different numbers of levels {sorted(levels)}")
    if df["sid"].duplicated().any():
        raise ValueError(f"{path}: SID {df.loc[df['sid'].duplicated(), 'sid'].iloc[0]!r} is shared by several items")
    return df


def lookup_sids(sid_of: dict[str, str], items: Sequence[str]) -> list[str]:
    """SIDs of these items; an item missing from the sid map is an error naming it."""
    try:
        return [sid_of[item] for item in items]
    except KeyError as exc:
        raise KeyError(f"item {exc.args[0]!r} has no SID in the sid map (was the sid stage run on this dataset?)") from None


def scored_user_interests(path: Path, limit: int) -> dict[str, list[tuple[str, float]]]:
    """user -> up to `limit` (curated interest, classifier score) pairs (label 1, highest score first) from
    `interests_labelled.parquet`."""
    df = pd.read_parquet(path)
    missing = {"kind", "entity_id", "interest", "score", "label"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    kept = df[(df["kind"] == "user") & (df["label"] == 1)].sort_values("score", ascending=False)
    return {str(u): list(zip(g["interest"], g["score"].astype(float), strict=True))[:limit]
            for u, g in kept.groupby("entity_id", sort=False)}


def user_interests(path: Path, limit: int) -> dict[str, list[str]]:
    """user -> up to `limit` curated interests (label 1, highest score first) from `interests_labelled.parquet`."""
    return {u: [text for text, _ in pairs] for u, pairs in scored_user_interests(path, limit).items()}
