"""Config of the data stage: which dataset, in which format, from where."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from genrec.config import REPO_ROOT, StrictModel

EMBEDDED_DATA = REPO_ROOT / "data"
DEFAULT_DATA_ROOT = Path(os.environ.get("GENREC_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))

DatasetFormat = Literal["lcrec", "s3rec", "minionerec", "generic"]

# Folder name -> format, for the datasets shipped in ../shared/data (and the embedded one).
KNOWN_DATASETS: dict[str, DatasetFormat] = {
    "scientific": "lcrec",
    "instruments": "lcrec",
    "beauty": "s3rec",
    "sports": "s3rec",
    "toys": "s3rec",
    "industrial_minionerec": "minionerec",
    "office_minionerec": "minionerec",
}


def detect_format(folder: Path) -> DatasetFormat | None:
    """Guess a dataset folder's format from its file names."""
    if any(folder.glob("*.inter.json*")):
        return "lcrec"
    if any(folder.glob("*.valid.csv*")):
        return "minionerec"
    if any(folder.glob("*.txt*")):
        return "s3rec"
    return None


class DataConfig(StrictModel):
    """Where a dataset lives and how to split it.

    `name` picks a dataset folder: `scientific` is embedded in the repo (`data/scientific`), the others are
    read from `root` (default `../shared/data`, or $GENREC_DATA_ROOT). `path` points at any folder directly.
    For your own data use `format: generic` with `interactions` (CSV/Parquet with user, item and optional
    timestamp columns) and optionally `item_meta` (JSONL with item_id, title, description, brand,
    categories, image).
    """

    name: str = "scientific"
    format: DatasetFormat | None = None
    root: Path = DEFAULT_DATA_ROOT
    path: Path | None = None
    interactions: Path | None = None
    item_meta: Path | None = None
    max_history: int = Field(20, ge=1, description="history window: most recent items kept per example")
    min_interactions: int = Field(3, ge=3, description="generic format: users with fewer are dropped")

    @property
    def dataset_format(self) -> DatasetFormat:
        if self.format is not None:
            return self.format
        if self.interactions is not None:
            return "generic"
        if self.path is None and self.name in KNOWN_DATASETS:
            return KNOWN_DATASETS[self.name]
        detected = detect_format(self.folder)
        if detected is None:
            raise ValueError(f"data.format: cannot infer the format of {self.folder}; set data.format")
        return detected

    @property
    def folder(self) -> Path:
        """The dataset folder (embedded copy first for `scientific`)."""
        if self.path is not None:
            return self.path
        embedded = EMBEDDED_DATA / self.name
        if embedded.is_dir() and self.root == DEFAULT_DATA_ROOT:
            return embedded
        return self.root / self.name

    @model_validator(mode="after")
    def _check_paths(self) -> DataConfig:
        if self.interactions is not None or self.format == "generic":
            if self.interactions is None:
                raise ValueError("data.interactions: required for format 'generic'")
            if not self.interactions.is_file():
                raise ValueError(f"data.interactions: file not found: {self.interactions}")
            if self.item_meta is not None and not self.item_meta.is_file():
                raise ValueError(f"data.item_meta: file not found: {self.item_meta}")
            return self
        if not self.folder.is_dir():
            raise ValueError(f"data: dataset folder not found: {self.folder} (set data.root or data.path)")
        self.dataset_format  # noqa: B018 - raises for unknown names without format
        return self
