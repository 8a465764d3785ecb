"""Benchmark the RLDI reward model on scientific: held-out AUCs vs plain cosine, and scoring speed.

Runs the label stage on a run folder whose data/ and mine/ come from a mining run (linked, not copied),
then loads the saved reward model the way GRPO does and times `score` on GRPO-like pairs (an item's text
against a user's mined interest): cold (every string new) and warm (strings already embedded).
Writes benchmarks/results/reward_scientific.json.

    nice -n 10 .venv/bin/python scripts/bench_reward.py --source runs/scientific_full
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.data import load_items, load_sequences, training_items
from genrec.reward import LabelConfig, RewardModel, run
from genrec.reward.labels import history_context, item_texts


def link_inputs(source: Path, run_dir: Path) -> None:
    """Make run_dir read the source run's data/ and mine/ (so the benchmark never writes into it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("data", "mine"):
        link = run_dir / name
        if not link.exists():
            link.symlink_to((source / name).resolve(), target_is_directory=True)


def time_scoring(model_dir: Path, contexts: list[str], interests: list[str], threads: int) -> dict[str, float]:
    """pairs/s of `RewardModel.score` on fresh strings (cold) and on the same pairs again (warm cache)."""
    import torch

    torch.set_num_threads(threads)
    model = RewardModel.load(model_dir)
    model.score(contexts[:8], interests[:8])  # load lazily-initialised kernels outside the timing
    model.encoder._cache.clear()
    start = time.perf_counter()
    model.score(contexts, interests)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(5):
        model.score(contexts, interests)
    warm = (time.perf_counter() - start) / 5
    return {"pairs": len(contexts), "cold_pairs_per_s": len(contexts) / cold, "warm_pairs_per_s": len(contexts) / warm,
            "unique_strings": len(set(contexts)) + len(set(interests))}


def examples(run_dir: Path, holdout_fraction: float, per_side: int, seed: int) -> list[dict]:
    """Kept and rejected user interests of held-out users, with the titles they were scored against."""
    from genrec.reward.labels import holdout_fold

    labelled = pd.read_parquet(RunPaths(run_dir).interests_labelled)
    items = load_items(run_dir)
    titles = dict(zip(items["item_id"].astype(str), items["title"].fillna(""), strict=True))
    train = training_items(load_sequences(run_dir))
    held = np.array([holdout_fold(k, e, holdout_fraction) == "holdout" for k, e in zip(labelled["kind"], labelled["entity_id"])])
    users = labelled[(labelled["kind"] == "user").to_numpy() & held]
    picked = pd.concat([users[users["label"] == 1].sample(min(per_side, int(users["label"].sum())), random_state=seed),
                        users[users["label"] == 0].sample(min(per_side, int((users["label"] == 0).sum())), random_state=seed)])
    return [{"user": r.entity_id, "history": history_context(train[r.entity_id][-5:], titles)[:300],
             "interest": r.interest, "score": round(float(r.score), 3), "kept": int(r.label)}
            for r in picked.itertuples()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("runs/scientific_full"), help="run with data/ and mine/")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/bench_reward"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reward_scientific.json"))
    parser.add_argument("--pairs", type=int, default=4096, help="pairs timed for pairs/s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="label config key=value")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import yaml

    config = LabelConfig.model_validate({k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)})
    link_inputs(args.source, args.run_dir)
    manifest = run(config, args.run_dir)
    held = manifest.metrics["holdout"]

    rng = np.random.default_rng(0)
    labelled = pd.read_parquet(RunPaths(args.run_dir).interests_labelled)
    user_interests = labelled.loc[labelled["kind"] == "user", "interest"].to_numpy()
    texts = item_texts(load_items(args.run_dir))
    item_ids = list(texts)
    contexts = [texts[item_ids[i]] for i in rng.integers(0, len(item_ids), args.pairs)]
    interests = list(user_interests[rng.integers(0, len(user_interests), args.pairs)])
    speed = time_scoring(RunPaths(args.run_dir).reward_model, contexts, interests, args.threads)

    result = {
        "command": command_line(),
        "machine": machine_description(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": str(args.source),
        "interests_from": sorted({m for ms in labelled["models"] for m in ms}),  # provenance of the mined rows
        "config": manifest.config,
        "evaluated_on": "held-out users (hash split, never seen by the head); item rows reported separately",
        "roc_auc": held["user_roc_auc"], "pr_auc": held["user_pr_auc"],
        "baseline_cosine_roc_auc": held["user_cosine_roc_auc"], "baseline_cosine_pr_auc": held["user_cosine_pr_auc"],
        "holdout_positive_rate": held["positive_rate"],
        "pairs_per_s": speed["cold_pairs_per_s"], "pairs_per_s_warm_cache": speed["warm_pairs_per_s"],
        "scoring": speed,
        "holdout": held, "train": manifest.metrics["train"], "threshold": manifest.metrics["threshold"],
        "counts": manifest.counts, "label_stage_wall_s": manifest.wall_s,
        "examples": examples(args.run_dir, config.holdout_fraction, per_side=4, seed=0),
    }
    write_json(args.out, result)
    print({k: result[k] for k in ("roc_auc", "pr_auc", "baseline_cosine_roc_auc", "pairs_per_s", "pairs_per_s_warm_cache")})


if __name__ == "__main__":
    main()
