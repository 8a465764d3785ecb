"""Prompt inputs read from the run folder, shared by training, `recommend` and serving: item SIDs and the
users' curated interests (so every consumer builds the same prompts from the same artifacts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from genrec.model.sid_tokens import parse_sid

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from genrec.model.config import ModelInfo


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


class HistoryPrompts:
    """Item-id histories -> prompt token ids in one checkpoint's format: the one place where history items
    become SIDs and titles (and a user's curated interests join the prompt), for training, GRPO, `recommend`,
    serving and the benchmark scripts alike."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, sid_of: dict[str, str],
                 titles: dict[str, str], interests: dict[str, list[str]] | None = None) -> None:
        self.tokenizer, self.info, self.sid_of, self.titles = tokenizer, info, sid_of, titles
        self.interests = interests or {}

    @classmethod
    def from_run(cls, run_dir: Path, tokenizer: PreTrainedTokenizerBase, info: ModelInfo,
                 sid_map: pd.DataFrame | None = None, items: pd.DataFrame | None = None) -> HistoryPrompts:
        """Read the run's sid map and item table (unless the caller already holds them), and, when the
        checkpoint's prompts carry them, the users' curated interests (as many as it was trained with)."""
        from genrec.artifacts import RunPaths
        from genrec.data import load_items

        paths = RunPaths(Path(run_dir))
        sid_map = read_sid_map(paths.sid_map) if sid_map is None else sid_map
        items = load_items(run_dir) if items is None else items
        titles = dict(zip(items["item_id"].astype(str), items["title"].fillna("").astype(str), strict=True))
        interests = user_interests(paths.interests_labelled, info.max_interests) if info.interests else {}
        return cls(tokenizer, info, dict(zip(sid_map["item_id"], sid_map["sid"], strict=True)), titles, interests)

    def ids(self, history: Sequence[str], interests: Sequence[str] | None = None) -> list[int]:
        """Prompt ids for "which item comes next" after `history` (item ids, oldest first); an item without a
        SID is an error naming it."""
        from genrec.model.prompt import build_prompt_ids

        items = [str(i) for i in history]
        return build_prompt_ids(self.tokenizer, self.info, lookup_sids(self.sid_of, items), interests=interests,
                                titles=[self.titles.get(i, "") for i in items], item_ids=items)

    def for_user(self, user: str, history: Sequence[str]) -> list[int]:
        """`ids` with this user's own curated interests (used only when the checkpoint reads interests)."""
        return self.ids(history, self.interests.get(str(user)))
