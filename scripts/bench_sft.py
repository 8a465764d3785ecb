"""Benchmark the SFT generative recommender: HR/NDCG@5/10 of model variants on one dataset's test split.

Each variant = (sid map, model config). For every variant the script makes a run folder that shares the
prepared data (`data/` symlinked) and holds its own copy of the sid map, then runs the real stages:
`sft` (trl SFTTrainer, validation-NDCG checkpoint choice), `recommend` (constrained beam search, 20 beams)
and scores the test recommendations. SASRec numbers come from the baselines engineer's results file.

    nice -n 10 python scripts/bench_sft.py --dataset scientific --data-run runs/bench_sft/scientific_text \
        --sid text=runs/bench_sft/scientific_text/sid/sid_map.parquet --variant scratch:text ...

Variants: `<kind>:<sid name>[:<max users>]`, kind in `scratch` / `llm` (LoRA on SmolLM2-135M-Instruct);
`max users` limits the test users scored (CPU budget for the LLM) — the metrics are then over that
sample only (stated in the JSON). Writes benchmarks/results/sft_<dataset>.json, merging each variant into the
file as it is when the variant ends, so variants can run one at a time or in parallel processes.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, write_json_merged
from genrec.config import REPO_ROOT, ConfigError, apply_overrides, build_model
from genrec.decode import RecommendConfig
from genrec.decode import run as run_recommend
from genrec.eval.metrics import paired_difference, topk_metrics, user_ndcg
from genrec.eval.recs import read_recs
from genrec.eval.stage import targets_for
from genrec.pipeline import reuse_or_run
from genrec.train.sft import SFTConfig

RESULTS = REPO_ROOT / "benchmarks" / "results"

# Model configs per kind, sized for a 2-core CPU (stated in the results file).
MODEL_CONFIGS: dict[str, dict] = {
    "scratch": dict(model={"kind": "scratch", "scratch": {"hidden": 64, "layers": 2, "heads": 4, "intermediate": 256}},
                    epochs=2, max_steps=200, lr=5e-3, batch_size=256, warmup=0.05, eval_every=100, valid_users=150,
                    num_beams=20, logging_steps=20),
    "llm": dict(model={"kind": "llm", "lora": {"r": 16, "alpha": 32, "dropout": 0.05}},
                epochs=1, max_steps=300, lr=1e-3, batch_size=16, warmup=0.05, eval_every=150, valid_users=100,
                num_beams=20, eval_batch_size=8, logging_steps=25),
}


def variant_run_dir(root: Path, data_run: Path, sid_map: Path, name: str) -> Path:
    """A run folder sharing `data_run`'s data and holding a copy of `sid_map`."""
    run_dir = root / name
    (run_dir / "sid").mkdir(parents=True, exist_ok=True)
    data_link = run_dir / "data"
    if not data_link.exists():
        data_link.symlink_to((data_run / "data").resolve(), target_is_directory=True)
    if not (run_dir / "sid" / "sid_map.parquet").is_file() or \
            (run_dir / "sid" / "sid_map.parquet").read_bytes() != sid_map.read_bytes():
        shutil.copyfile(sid_map, run_dir / "sid" / "sid_map.parquet")
    return run_dir


def variant_config(kind: str, threads: int, overrides: list[str]) -> SFTConfig:
    """A variant's SFT config: the kind's defaults and thread count, then the `--set key.sub=value` overrides
    (values parsed as YAML, as `genrec --set` does), so a bad key or value is named before anything trains."""
    if kind not in MODEL_CONFIGS:
        raise ConfigError(f"variant kind {kind!r} is not one of {', '.join(MODEL_CONFIGS)}")
    data = apply_overrides(copy.deepcopy({**MODEL_CONFIGS[kind], "threads": threads}), overrides)
    return build_model(SFTConfig, data, "--set")


def run_variant(kind: str, config: SFTConfig, run_dir: Path, max_users: int | None, threads: int,
                engine: str = "hf") -> dict:
    """SFT + recommend + test metrics for one variant."""
    # A finished SFT run with this exact config and inputs is reused (re-scoring on more users costs no retraining).
    sft, _ = reuse_or_run("sft", config, run_dir)
    batch = 256 if engine == "vllm" else 32 if kind == "scratch" else 4
    rec_config = RecommendConfig(num_beams=20, k=20, system=f"sft_{kind}", engine=engine, batch_size=batch,
                                 max_users=max_users, threads=threads)
    rec = run_recommend(rec_config, run_dir)
    recs = read_recs(RunPaths(run_dir).recs(rec_config.system))
    targets = targets_for(run_dir, "test")
    scored = {u: targets[u] for u in recs}  # the users actually searched (all of them unless max_users)
    return {
        "metrics": topk_metrics(recs, scored, [5, 10]),
        "test_users": len(scored),
        "train_wall_s": sft.metrics["train_wall_s"],
        "train_steps": sft.counts["steps"],
        "train_examples": sft.counts["train_examples"],
        "parameters": sft.counts["parameters"],
        "valid_curve": sft.metrics["valid_curve"],
        "curves": str(RunPaths(run_dir).stage_dir("sft") / "curves.json"),  # train loss + validation, for plots
        "best_valid_ndcg@10": sft.metrics["best_metric"],
        "recommend_users_per_s": rec.metrics["users_per_s"],
        "recommend_engine": engine,
        "sft_config": config.model_dump(mode="json"),
    }


def same_users_metrics(recs_path: Path, run_dir: Path, kind: str) -> dict:
    """A reference system's HR/NDCG on exactly the test users this variant was scored on, and the variant's paired
    per-user NDCG@10 difference to it (`paired_ndcg@10`: mean and 95% interval)."""
    ours = read_recs(RunPaths(run_dir).recs(f"sft_{kind}"))
    targets = targets_for(run_dir, "test")
    targets = {u: targets[u] for u in ours}
    reference = read_recs(recs_path)
    paired = paired_difference(user_ndcg(ours, targets), user_ndcg(reference, targets))
    return {**topk_metrics(reference, targets, [5, 10]), "paired_ndcg@10": paired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-run", type=Path, required=True, help="run folder whose data/ holds the prepared split")
    parser.add_argument("--sid", action="append", default=[], help="NAME=PATH of a sid_map.parquet (repeatable)")
    parser.add_argument("--variant", action="append", default=[], help="KIND:SIDNAME[:MAXUSERS] (repeatable)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT / "runs" / "bench_sft")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf", help="recommend stage engine")
    parser.add_argument("--set", action="append", default=[],
                        help="sft override KEY.SUB=VALUE (YAML value) for every variant")
    parser.add_argument("--compare", action="append", default=[],
                        help="NAME=recs.jsonl of a reference system (e.g. SASRec), scored on each variant's users")
    args = parser.parse_args()
    sids = dict(item.split("=", 1) for item in args.sid)
    variants = [(kind, sid_name, int(rest[0]) if rest else None)
                for kind, sid_name, *rest in (spec.split(":") for spec in args.variant)]
    try:
        configs = {kind: variant_config(kind, args.threads, args.set) for kind, _, _ in variants}
    except ConfigError as exc:
        raise SystemExit(f"bench_sft: {exc}") from None
    out = RESULTS / f"sft_{args.dataset}.json"
    sasrec = RESULTS / f"baseline_sasrec_{args.dataset}.json"
    shared = {"sasrec": json.loads(sasrec.read_text()).get("metrics")} if sasrec.is_file() else {}
    for kind, sid_name, max_users in variants:
        name = f"{args.dataset}_{kind}_{sid_name}"
        run_dir = variant_run_dir(args.root, args.data_run, Path(sids[sid_name]), name)
        print(f"== {name} ({run_dir})", file=sys.stderr)
        start = time.perf_counter()
        entry = run_variant(kind, configs[kind], run_dir, max_users, args.threads, args.engine)
        entry.update(sid_map=sids[sid_name], total_wall_s=round(time.perf_counter() - start, 1))
        entry["reference_same_users"] = {ref: same_users_metrics(Path(path), run_dir, kind)
                                         for ref, path in (item.split("=", 1) for item in args.compare)}
        command = command_line()
        entry.update(command=command, machine=machine_description(),
                     date=datetime.now(UTC).isoformat(timespec="seconds"))
        key = f"{kind}:{sid_name}"  # merged into the file as it is now: variants may run in parallel processes
        write_json_merged(out, {**shared, "variants": {key: entry}, "metrics": {key: entry["metrics"]},
                                "command": command, "machine": entry["machine"], "date": entry["date"],
                                "dataset": args.dataset}, sections=("variants", "metrics"))
        print(json.dumps({name: entry["metrics"], "train_wall_s": entry["train_wall_s"],
                          "users_per_s": entry["recommend_users_per_s"]}), file=sys.stderr)


if __name__ == "__main__":
    main()
