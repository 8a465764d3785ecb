"""Baseline numbers: data + MostPop + SASRec through the real stages and evaluation, on one dataset.

    nice -n 10 .venv/bin/python scripts/bench_baselines.py --dataset beauty

Reads `configs/<dataset>.yaml` when it exists (its data / baselines / eval sections; the run folder is
`runs/bench_baselines/<dataset>`), applies `--set key=value` overrides, and writes
`benchmarks/results/baseline_{mostpop,sasrec}_<dataset>.json` with the test metrics and wall time.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from genrec.artifacts import command_line, machine_description, write_json
from genrec.baselines import BaselinesConfig
from genrec.config import REPO_ROOT
from genrec.eval import EvalConfig
from genrec.pipeline import load_run_config, run_pipeline, run_stage

RESULTS = REPO_ROOT / "benchmarks" / "results"
METRICS = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="scientific, beauty, ... (a data.name)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    parser.add_argument("--systems", default="mostpop,sasrec", help="comma-separated baselines to run")
    args = parser.parse_args()
    systems = args.systems.split(",")

    yaml_path = REPO_ROOT / "configs" / f"{args.dataset}.yaml"
    base = [f"run_dir={REPO_ROOT / 'runs' / 'bench_baselines' / args.dataset}", f"data.name={args.dataset}"]
    config = load_run_config(yaml_path if yaml_path.is_file() else None, [*base, *args.overrides])
    baselines = config.baselines or BaselinesConfig()
    # Only the data stage runs through the pipeline (skipped when fresh); the later stages are timed one by one.
    data_only = config.model_copy(update={name: None for name in type(config).model_fields
                                          if name not in {"run_dir", "data"}})
    run_pipeline(data_only)

    command = command_line()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for system in systems:
        cfg = config.model_copy(update={"baselines": baselines.model_copy(update={"systems": [system]}),
                                        "eval": EvalConfig(systems=[system])})
        start = time.perf_counter()
        manifest = run_stage(cfg, "baselines")
        wall = time.perf_counter() - start
        metrics = run_stage(cfg, "eval").metrics[system]
        result = {
            "dataset": args.dataset, "system": system, "command": command, "machine": machine_description(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "wall_s": round(wall, 1),
            "metrics": {m: metrics[m] for m in METRICS}, "users": metrics["users"],
            "config": baselines.sasrec.model_dump() if system == "sasrec" else {"k": baselines.k},
        }
        if system == "sasrec":
            result["summary"] = summary = manifest.metrics["sasrec"]
            # a resumed run: count the training time spent before the checkpoint too
            result["wall_s"] = round(wall + summary["train_wall_s_before_resume"], 1)
        write_json(RESULTS / f"baseline_{system}_{args.dataset}.json", result)
        print(system, args.dataset, result["metrics"], f"wall {result['wall_s']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
