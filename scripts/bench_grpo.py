"""GRPO benchmark: SFT vs SFT+GRPO (rule rewards) vs SFT+GRPO (+ interest-aware reward).

Takes a run folder that already holds data, sid, sft (and label, for the interest reward; or `--label`
another run's), runs the `grpo` stage per variant in sibling folders that link to those inputs, ranks
every test user with the `recommend` stage for the SFT and each GRPO checkpoint (chosen on validation),
and writes `benchmarks/results/grpo_<dataset>.json` (metrics, per-user paired NDCG@10 difference to SFT,
reward curves, rollouts/s, invalid rollouts) plus a plot of the reward terms over steps
(`benchmarks/grpo_<dataset>_rewards.png`). `--tag` suffixes the variant names, so settings can be compared
in one JSON (e.g. two learning rates).

    nice -n 15 python scripts/bench_grpo.py --source runs/bench_sft/scientific_scratch_textrq12ep \
        --label runs/mined_scientific --out runs/grpo_bench_scientific --steps 100 --lr 2e-5
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, write_json_merged
from genrec.config import REPO_ROOT
from genrec.decode import run as recommend
from genrec.decode.config import RecommendConfig
from genrec.eval.metrics import paired_difference, topk_metrics, user_ndcg
from genrec.eval.recs import read_recs
from genrec.eval.stage import targets_for
from genrec.pipeline import reuse_or_run
from genrec.train.grpo import GRPOStageConfig, RewardWeights

LINKED = ("data", "sid", "sft", "label", "mine", "embed")
SECTIONS = ("metrics", "training", "wall_s", "paired_vs_sft", "grpo_config", "rollouts_per_s")


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


def test_metrics(run_dir: Path, checkpoint: str, system: str, users: int | None, threads: int,
                 ) -> tuple[dict, dict[str, float]]:
    """HR/NDCG@5/10 of one checkpoint on the test users (the first `users`, or all), and per-user NDCG@10.
    The SFT lists are ranked once per output folder and user count, and read back on later calls (`users_per_s`
    then absent)."""
    extra = {}
    all_targets = targets_for(run_dir, "test")
    wanted = len(all_targets) if users is None else min(users, len(all_targets))
    path = RunPaths(run_dir).recs(system)
    recs = read_recs(path, min_items=1) if checkpoint == "sft" and path.is_file() else {}
    if len(recs) != wanted or checkpoint != "sft":
        manifest = recommend(RecommendConfig(checkpoint=checkpoint, system=system, max_users=users, threads=threads,
                                             batch_size=32), run_dir)
        extra["users_per_s"] = manifest.metrics["users_per_s"]
        recs = read_recs(path, min_items=1)
    targets = {u: t for u, t in all_targets.items() if u in recs}
    return {**topk_metrics(recs, targets), "users": len(targets), **extra}, user_ndcg(recs, targets)


def plot(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """One panel per reward term (plus total reward and KL), one line per GRPO variant: its 10-step moving
    average over the faint per-step values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [k for k in ("exact_hit", "sid_prefix", "rank_penalty", "invalid_penalty", "interest_reward", "reward", "kl")
            if any(k in c for c in curves.values())]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, c in curves.items():
            if key in c:
                values = [math.nan if v is None else v for v in c[key]]
                smooth = [float(np.nanmean(values[max(0, i - 9):i + 1])) if not all(map(math.isnan, values[max(0, i - 9):i + 1]))
                          else math.nan for i in range(len(values))]
                line, = ax.plot(c["step"], smooth, label=name, linewidth=1.2)
                ax.plot(c["step"], values, color=line.get_color(), linewidth=0.5, alpha=0.25)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="run folder with data, sid, sft (and label)")
    parser.add_argument("--dataset", default="scientific")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "grpo_bench")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--rollout", choices=("sample", "beam"), default="sample",
                        help="sampled rollouts, or each group = the best distinct SIDs of beam search (MiniOneRec)")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--valid-users", type=int, default=2000)
    parser.add_argument("--test-users", type=int, default=None, help="first N test users (default: all)")
    parser.add_argument("--rank-weight", type=float, default=0.2)
    parser.add_argument("--prefix-weight", type=float, default=0.5, help="SID-prefix partial credit (0: off)")
    parser.add_argument("--rank-any-target", action="store_true",
                        help="rank penalty also in groups without a hit (the policy scores the unsampled target)")
    parser.add_argument("--interest-weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded 2-core box)")
    parser.add_argument("--tag", default="", help="suffix of the GRPO variant names (compare settings in one JSON)")
    parser.add_argument("--label", type=Path, default=None, help="run folder whose label/ (reward model) to use")
    parser.add_argument("--results", type=Path, default=None,
                        help="results JSON (default benchmarks/results/grpo_<dataset>.json); entries merge into it")
    parser.add_argument("--variants", default="grpo_rules,grpo_interest",
                        help="comma-separated subset (SFT is always scored); results are merged into an existing "
                             "JSON of the same dataset")
    args = parser.parse_args()

    source = args.source.resolve()
    common = dict(steps=args.steps, prompts_per_step=args.prompts_per_step, num_generations=args.num_generations,
                  lr=args.lr, beta=args.beta, temperature=args.temperature, rollout=args.rollout,
                  eval_every=args.eval_every, valid_users=args.valid_users, threads=args.threads,
                  rank_only_with_hit=not args.rank_any_target)
    rules = RewardWeights(rank_penalty=args.rank_weight, sid_prefix=args.prefix_weight, interest_reward=0.0)
    variants = {
        f"grpo_rules{args.tag}": GRPOStageConfig(**common, weights=rules),
        f"grpo_interest{args.tag}": GRPOStageConfig(
            **common, weights=rules.model_copy(update={"interest_reward": args.interest_weight})),
    }
    wanted = [f"{v}{args.tag}" for v in args.variants.split(",")]
    out_json = args.results or REPO_ROOT / "benchmarks" / "results" / f"grpo_{args.dataset}.json"
    result: dict = {key: {} for key in SECTIONS}
    command = command_line()
    result.update({
        "commands": [command], "dataset": args.dataset, "command": command,
        "machine": machine_description(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run": str(args.source), "label_run": str(args.label or args.source), "test_users": args.test_users,
    })
    result["grpo_config"].update({n: c.model_dump(mode="json") for n, c in variants.items() if n in wanted})
    label = args.label.resolve() if args.label else None
    sft_dir = variant_dir(source, args.out, "sft", label)
    start = time.perf_counter()
    sft_metrics, sft_users = test_metrics(sft_dir, "sft", "sft", args.test_users, args.threads)
    result["metrics"]["sft"] = sft_metrics
    result["wall_s"]["sft_test"] = round(time.perf_counter() - start, 1)
    write_json_merged(out_json, result, SECTIONS, lists=("commands",))
    for name, cfg in variants.items():
        if name not in wanted:
            continue
        folder = variant_dir(source, args.out, name, label)
        # a variant trained before with this config is only re-scored (e.g. on all test users after a sample)
        manifest, _ = reuse_or_run("grpo", cfg, folder)
        result["wall_s"][f"{name}_train"] = round(manifest.wall_s, 1)
        result["training"][name] = {
            **manifest.counts, "rollouts_per_s": manifest.metrics["rollouts_per_s"],
            "valid_curve": manifest.metrics["valid_curve"], "reward_terms": manifest.metrics["reward_terms"],
            "reward_curves": manifest.metrics["reward_curves"],
        }
        write_json_merged(out_json, result, SECTIONS, lists=("commands",))  # partial results survive
        start = time.perf_counter()
        result["metrics"][name], users = test_metrics(folder, "grpo", name, args.test_users, args.threads)
        result["wall_s"][f"{name}_test"] = round(time.perf_counter() - start, 1)
        result["paired_vs_sft"][name] = paired_difference(users, sft_users)
        write_json_merged(out_json, result, SECTIONS, lists=("commands",))
    result["rollouts_per_s"] = {name: t["rollouts_per_s"] for name, t in result["training"].items()}
    merged = write_json_merged(out_json, result, SECTIONS, lists=("commands",))
    plot({name: t["reward_curves"] for name, t in merged["training"].items()},
         REPO_ROOT / "benchmarks" / f"{out_json.stem}_rewards.png")
    print(json.dumps(merged["metrics"], indent=2))


if __name__ == "__main__":
    main()
