"""GRPO benchmark: SFT vs SFT+GRPO (rule rewards) vs SFT+GRPO (+ interest-aware reward).

Takes a run folder that already holds data, sid, sft (and label, for the interest reward), runs the
`grpo` stage twice in sibling folders that link to those inputs, ranks the same test users with the
`recommend` stage for the SFT and both GRPO checkpoints, and writes
`benchmarks/results/grpo_<dataset>.json` plus a plot of the reward terms over steps
(`benchmarks/grpo_<dataset>_rewards.png`).

    nice -n 10 python scripts/bench_grpo.py --source runs/scientific --dataset scientific --steps 60
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.decode import run as recommend
from genrec.decode.config import RecommendConfig
from genrec.eval.metrics import topk_metrics
from genrec.eval.recs import read_recs
from genrec.eval.stage import targets_for
from genrec.train.grpo import GRPOStageConfig, RewardWeights
from genrec.train.grpo import run as grpo

LINKED = ("data", "sid", "sft", "label", "mine", "embed")


def variant_dir(source: Path, out: Path, name: str, label: Path | None) -> Path:
    """A run folder for one variant whose input stages are symlinks to the source run's (and `label/` to
    `label`'s, when the reward model was trained in another run folder on the same data split)."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for stage in LINKED:
        origin = label if stage == "label" and label is not None else source
        target, link = (origin / stage).resolve(), folder / stage
        if target.exists() and not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return folder


def test_metrics(run_dir: Path, checkpoint: str, system: str, users: int, threads: int) -> dict:
    """HR/NDCG@5/10 of one checkpoint on the first `users` test users (the recommend stage's order)."""
    manifest = recommend(RecommendConfig(checkpoint=checkpoint, system=system, max_users=users, threads=threads), run_dir)
    recs = read_recs(RunPaths(run_dir).recs(system), min_items=1)
    targets = {u: t for u, t in targets_for(run_dir, "test").items() if u in recs}
    return {**topk_metrics(recs, targets), "users": len(targets), "users_per_s": manifest.metrics["users_per_s"]}


def plot(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """One panel per reward term (plus total reward and KL), one line per GRPO variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("exact_hit", "sid_prefix", "rank_penalty", "invalid_penalty", "interest_reward", "reward", "kl")
            if any(k in c for c in curves.values())]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, c in curves.items():
            if key in c:
                ax.plot(c["step"], c[key], label=name, linewidth=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="run folder with data, sid, sft (and label)")
    parser.add_argument("--dataset", default="scientific")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "bench_grpo")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--valid-users", type=int, default=256)
    parser.add_argument("--test-users", type=int, default=1000)
    parser.add_argument("--interest-weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", type=Path, default=None, help="run folder whose label/ (reward model) to use")
    parser.add_argument("--variants", default="sft,grpo_rules,grpo_interest",
                        help="comma-separated subset; results are merged into an existing JSON of the same dataset")
    args = parser.parse_args()

    source = args.source.resolve()
    common = dict(steps=args.steps, prompts_per_step=args.prompts_per_step, num_generations=args.num_generations,
                  lr=args.lr, beta=args.beta, eval_every=args.eval_every, valid_users=args.valid_users,
                  threads=args.threads)
    variants = {
        "grpo_rules": GRPOStageConfig(**common, weights=RewardWeights(interest_reward=0.0)),
        "grpo_interest": GRPOStageConfig(**common, weights=RewardWeights(interest_reward=args.interest_weight)),
    }
    wanted = args.variants.split(",")
    out_json = REPO_ROOT / "benchmarks" / "results" / f"grpo_{args.dataset}.json"
    result: dict = json.loads(out_json.read_text()) if out_json.is_file() else {"metrics": {}, "training": {}, "wall_s": {}}
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    result["commands"] = [*result.get("commands", []), command]
    result.update({
        "dataset": args.dataset, "command": command,
        "machine": machine_description(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run": str(args.source), "label_run": str(args.label or args.source), "test_users": args.test_users,
    })
    result.setdefault("grpo_config", {}).update({n: c.model_dump(mode="json") for n, c in variants.items() if n in wanted})
    label = args.label.resolve() if args.label else None
    if "sft" in wanted:
        start = time.perf_counter()
        result["metrics"]["sft"] = test_metrics(variant_dir(source, args.out, "sft", label), "sft", "sft",
                                                args.test_users, args.threads)
        result["wall_s"]["sft_test"] = round(time.perf_counter() - start, 1)
        write_json(out_json, result)
    for name, cfg in variants.items():
        if name not in wanted:
            continue
        folder = variant_dir(source, args.out, name, label)
        start = time.perf_counter()
        manifest = grpo(cfg, folder)
        result["wall_s"][f"{name}_train"] = round(time.perf_counter() - start, 1)
        result["training"][name] = {
            **manifest.counts, "rollouts_per_s": manifest.metrics["rollouts_per_s"],
            "valid_curve": manifest.metrics["valid_curve"], "reward_terms": manifest.metrics["reward_terms"],
            "reward_curves": manifest.metrics["reward_curves"],
        }
        write_json(out_json, result)  # partial results survive
        start = time.perf_counter()
        result["metrics"][name] = test_metrics(folder, "grpo", name, args.test_users, args.threads)
        result["wall_s"][f"{name}_test"] = round(time.perf_counter() - start, 1)
        write_json(out_json, result)
    result["rollouts_per_s"] = {name: t["rollouts_per_s"] for name, t in result["training"].items()}
    write_json(out_json, result)
    plot({name: t["reward_curves"] for name, t in result["training"].items()},
         REPO_ROOT / "benchmarks" / f"grpo_{args.dataset}_rewards.png")
    print(json.dumps(result["metrics"], indent=2))


if __name__ == "__main__":
    main()
