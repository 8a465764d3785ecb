"""Record a finished `genrec run` folder's SFT and GRPO results beside the benchmark scripts' rows, so the
reproduction report (`bench_repro.py`) can place a full config run on its ladder.

Reads the run's `sft`, `grpo` and `eval` manifests and its recommendation files (it trains and searches nothing)
and writes
- `benchmarks/results/sft_<dataset>.json`, variant `<kind>:<name>` (merged beside the others), and
- `benchmarks/results/grpo_<dataset>_<name>.json`: `metrics` of `sft` and `grpo_<rules|interest>` (by the run's
  reward weights), GRPO training counts and validation curve, paired NDCG@10 differences.

    python scripts/record_run.py --run runs/beauty --dataset beauty --name collab_beauty_yaml_8ep_mined
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, read_manifest, write_json, write_json_merged
from genrec.config import REPO_ROOT
from genrec.eval.metrics import paired_difference, topk_metrics, user_ndcg
from genrec.eval.recs import read_recs
from genrec.eval.stage import targets_for

RESULTS = REPO_ROOT / "benchmarks" / "results"
REFERENCES = ("sasrec", "mostpop")


def required_manifest(run: Path, stage: str):
    """A stage's manifest, failing clearly when the run has not finished it."""
    manifest = read_manifest(run / stage)
    if manifest is None:
        raise SystemExit(f"{run / stage}: no manifest; finish the run first (`genrec run <config>`)")
    return manifest


def scored(run: Path, system: str, targets: dict[str, str]) -> tuple[dict, dict[str, float]]:
    """Test HR/NDCG@5/10 of one system's recommendations, and its per-user NDCG@10 (for paired comparisons)."""
    recs = read_recs(RunPaths(run).recs(system))
    users = {u: targets[u] for u in recs}
    return {**topk_metrics(recs, users, [5, 10]), "users": len(users)}, user_ndcg(recs, users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder whose sft, grpo and eval stages ran")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--name", required=True, help="the variant name the run's rows get in the results files")
    parser.add_argument("--notes", default="", help="what a reader should know about this run")
    args = parser.parse_args()

    sft, grpo, _ = (required_manifest(args.run, s) for s in ("sft", "grpo", "eval"))
    targets = targets_for(args.run, "test")
    systems = {s: scored(args.run, s, targets) for s in ("sft", "grpo", *REFERENCES)
               if RunPaths(args.run).recs(s).is_file()}
    weights = dict(zip(grpo.metrics["reward_terms"], grpo.metrics["reward_weights"], strict=True))
    reward = "interest" if weights.get("interest_reward", 0) > 0 else "rules"
    common = {"command": command_line(), "machine": machine_description(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "run": str(args.run), "notes": args.notes}

    sft_entry = {
        "metrics": systems["sft"][0], "test_users": systems["sft"][0]["users"],
        "train_wall_s": sft.metrics["train_wall_s"], "train_steps": sft.counts["steps"],
        "train_examples": sft.counts["train_examples"], "parameters": sft.counts["parameters"],
        "valid_curve": sft.metrics["valid_curve"], "best_valid_ndcg@10": sft.metrics["best_metric"],
        "curves": str(RunPaths(args.run).stage_dir("sft") / "curves.json"), "sft_config": sft.config,
        "reference_same_users": {ref: {**systems[ref][0], "paired_ndcg@10": paired_difference(systems["sft"][1],
                                                                                             systems[ref][1])}
                                 for ref in REFERENCES if ref in systems},
        **common,
    }
    key = f"{sft.metrics['model_kind']}:{args.name}"
    write_json_merged(RESULTS / f"sft_{args.dataset}.json",
                      {"variants": {key: sft_entry}, "metrics": {key: sft_entry["metrics"]}},
                      sections=("variants", "metrics"))

    variant = f"grpo_{reward}"
    write_json(RESULTS / f"grpo_{args.dataset}_{args.name}.json", {
        "metrics": {"sft": systems["sft"][0], variant: systems["grpo"][0]},
        "training": {variant: {**grpo.counts, "valid_curve": grpo.metrics["valid_curve"],
                               "reward_curves": grpo.metrics.get("reward_curves", {}),
                               "best_valid_ndcg@10": grpo.metrics["valid_ndcg10_best"],
                               "valid_ndcg10_sft": grpo.metrics["valid_ndcg10_sft"]}},
        "wall_s": {f"{variant}_train": grpo.wall_s},
        "paired_vs_sft": {variant: paired_difference(systems["grpo"][1], systems["sft"][1])},
        "grpo_config": {variant: grpo.config}, "rollouts_per_s": {variant: grpo.metrics["rollouts_per_s"]},
        "dataset": args.dataset, "test_users": systems["grpo"][0]["users"], **common,
    })
    print(f"{key}: {systems['sft'][0]}\n{variant}: {systems['grpo'][0]}")


if __name__ == "__main__":
    main()
