"""Curated item interests: which file, which rows, and how much each interest weighs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genrec.artifacts import RunPaths
from genrec.embed.config import InterestSource

REQUIRED = {"kind", "entity_id", "interest"}


@dataclass(frozen=True)
class ItemInterests:
    """Per item, its interests with weights (highest first); `source` says which file they came from."""

    source: str  # "labelled", "mined" or "none"
    path: Path | None
    by_item: dict[str, list[tuple[str, float]]]


def interest_file(run_dir: Path, source: InterestSource) -> tuple[str, Path | None]:
    """Pick the interests file: labelled beats mined under `auto`; an explicit choice must exist."""
    paths = RunPaths(Path(run_dir))
    candidates = {"labelled": paths.interests_labelled, "mined": paths.interests}
    if source == "none":
        return "none", None
    if source != "auto":
        return source, candidates[source]
    for name, path in candidates.items():
        if path.is_file():
            return name, path
    return "none", None


def load_item_interests(run_dir: Path, source: InterestSource, item_ids: set[str], limit: int) -> ItemInterests:
    """Item-kind interests: labelled rows with label 1 weighted by score, or mined rows weighted by agreement.

    Raises naming the file when it is missing (explicit source), lacks columns, or names unknown items.
    """
    name, path = interest_file(run_dir, source)
    if path is None:
        return ItemInterests("none", None, {})
    if not path.is_file():
        raise FileNotFoundError(f"embed.interests={name}: {path} not found; run the stage that writes it or use auto/none")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ValueError(f"{path}: cannot read interests parquet ({exc})") from exc
    weight_col = "score" if name == "labelled" else "agreement"
    missing = (REQUIRED | {weight_col} | ({"label"} if name == "labelled" else set())) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    frame = frame[frame["kind"] == "item"]
    if name == "labelled":
        frame = frame[frame["label"] == 1]
    frame = frame.assign(entity_id=frame["entity_id"].astype(str), interest=frame["interest"].astype(str).str.strip())
    unknown = sorted(set(frame["entity_id"]) - item_ids)
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} interest rows name items not in items.parquet, e.g. {unknown[:5]}")
    frame = frame[frame["interest"] != ""]
    frame = (frame.groupby(["entity_id", "interest"], sort=False)[weight_col].max().reset_index()
             .sort_values(["entity_id", weight_col, "interest"], ascending=[True, False, True]))
    by_item: dict[str, list[tuple[str, float]]] = {}
    for item, group in frame.groupby("entity_id", sort=True):
        by_item[str(item)] = list(zip(group["interest"], group[weight_col].astype(float), strict=True))[:limit]
    return ItemInterests(name, path, by_item)
