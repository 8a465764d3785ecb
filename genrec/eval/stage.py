"""The eval stage: score recs.jsonl files against the test (or validation) targets of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from genrec.artifacts import Manifest, RunPaths, stage_run, write_json
from genrec.config import StrictModel
from genrec.data import load_items, load_sequences
from genrec.eval.metrics import DEFAULT_KS, topk_metrics
from genrec.eval.recs import MIN_ITEMS, RecsFormatError, read_recs


class EvalConfig(StrictModel):
    """Which systems' recommendations to score (names of folders under `eval/`), on which split."""

    systems: list[str] = Field(default_factory=lambda: ["mostpop", "sasrec"])
    split: Literal["valid", "test"] = "test"
    ks: list[int] = Field(default_factory=lambda: list(DEFAULT_KS))


def targets_for(run_dir: Path, split: str) -> dict[str, str]:
    """user -> target item of the given split."""
    seq = load_sequences(run_dir)
    rows = seq[seq["split"] == split]
    return dict(zip(rows["user_id"], rows["target"], strict=True))


def evaluate_file(recs_path: Path, run_dir: Path, split: str = "test", ks: list[int] | None = None) -> dict[str, float]:
    """Score one recs.jsonl against the run's targets; unknown users or items are errors."""
    known = set(load_items(run_dir)["item_id"])
    recs = read_recs(recs_path, known_items=known, min_items=min(MIN_ITEMS, len(known)))
    targets = targets_for(run_dir, split)
    unknown_users = [u for u in recs if u not in targets]
    if unknown_users:
        raise RecsFormatError(f"{recs_path}: user {unknown_users[0]!r} has no {split} target in {run_dir}")
    metrics = topk_metrics(recs, targets, ks or list(DEFAULT_KS))
    metrics["users"] = len(targets)
    metrics["covered_users"] = sum(1 for u in targets if u in recs)
    return metrics


def inputs(config: EvalConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    return [paths.sequences, paths.items, *[paths.recs(name) for name in config.systems]]


def run(config: EvalConfig, run_dir: Path) -> Manifest:
    """Score every configured system and write `eval/<system>/metrics.json` plus the stage manifest."""
    paths = RunPaths(Path(run_dir))
    with stage_run("eval", config, paths.stage_dir("eval"), inputs(config, run_dir)) as manifest:
        for name in config.systems:
            metrics = evaluate_file(paths.recs(name), run_dir, config.split, config.ks)
            write_json(paths.metrics(name), metrics)
            manifest.metrics[name] = metrics
            manifest.outputs.append(str(paths.metrics(name)))
    return manifest
