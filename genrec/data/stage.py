"""The data stage: read a dataset in any known format, split it, write `items.parquet` + `sequences.parquet`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from genrec.artifacts import Manifest, RunPaths, atomic_output, stage_run
from genrec.data.config import DataConfig
from genrec.data.formats import RawDataset, read_generic, read_lcrec, read_minionerec, read_s3rec
from genrec.data.split import SEQUENCE_COLUMNS, leave_one_out, statistics


def inputs(config: DataConfig, run_dir: Path) -> list[Path]:
    """Source files of the dataset (what decides whether the stage is stale)."""
    if config.dataset_format == "generic":
        return [p for p in (config.interactions, config.item_meta) if p is not None]
    return sorted(p for p in config.folder.iterdir() if p.is_file() and p.name != "SOURCE.md")


def read_raw(config: DataConfig) -> RawDataset:
    """Read the configured dataset with the reader of its format."""
    fmt = config.dataset_format
    if fmt == "generic":
        assert config.interactions is not None
        return read_generic(config.interactions, config.item_meta)
    reader = {"lcrec": read_lcrec, "s3rec": read_s3rec, "minionerec": read_minionerec}[fmt]
    return reader(config.folder)


def prepare(config: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Items table, split sequences table and statistics, without writing anything."""
    raw = read_raw(config)
    if raw.samples:  # evaluation-only set: the split is given
        split = pd.DataFrame(raw.samples, columns=SEQUENCE_COLUMNS)
        split["history"] = split["history"].map(lambda h: h[-config.max_history:])
        counts = statistics({}, split, len(raw.items))
        counts["users"] = int(split["user_id"].str.split("#").str[0].nunique())
        counts["interactions"] = len(split)
    else:
        split = leave_one_out(raw.sequences, config.max_history)
        counts = statistics(raw.sequences, split, len(raw.items))
        counts["dropped_users"] = sum(1 for s in raw.sequences.values() if len(s) < 3)
    return raw.items, split, counts


def run(config: DataConfig, run_dir: Path) -> Manifest:
    """Prepare the dataset into the run folder."""
    paths = RunPaths(Path(run_dir))
    with stage_run("data", config, paths.stage_dir("data"), inputs(config, run_dir)) as manifest:
        items, sequences, counts = prepare(config)
        for frame, path in ((items, paths.items), (sequences, paths.sequences)):
            with atomic_output(path) as tmp:
                frame.to_parquet(tmp, index=False)
        manifest.outputs = [str(paths.items), str(paths.sequences)]
        manifest.counts = counts
        manifest.metrics = {"dataset": config.name, "format": config.dataset_format}
    return manifest


def load_items(run_dir: Path) -> pd.DataFrame:
    """The run's item table (raises naming the file if the data stage has not run)."""
    path = RunPaths(Path(run_dir)).items
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `genrec data prepare` first")
    return pd.read_parquet(path)


def load_sequences(run_dir: Path) -> pd.DataFrame:
    """The run's split sequences (user_id, split, history, target)."""
    path = RunPaths(Path(run_dir)).sequences
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `genrec data prepare` first")
    frame = pd.read_parquet(path)
    frame["history"] = frame["history"].map(list)
    return frame
