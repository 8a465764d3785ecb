"""Compare the seed-mean of several runs of one recipe with a reference system, paired per test user.

Each user's NDCG@10 is averaged over the seeds' `recs.jsonl`, then compared with the reference's NDCG@10 for the same
user (mean difference and its 95% interval). The interval covers the users drawn, not the seeds: it says whether the
recipe, averaged over these seeds, differs from the reference on this test set.

    python scripts/compare_seeds.py --run runs/scientific_text --reference runs/scientific_text/eval/sasrec/recs.jsonl \
        --seeds runs/sft_loss/scientific_scratch_ls02/eval/sft_scratch/recs.jsonl ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genrec.eval.metrics import paired_difference, user_ndcg
from genrec.eval.recs import read_recs
from genrec.eval.stage import targets_for


def covered_user_ndcg(path: Path, targets: dict[str, str]) -> dict[str, float]:
    """Per-user NDCG@10 of one recs.jsonl that must cover every target user (a skipped user would count as a miss)."""
    recs = read_recs(path)
    missing = targets.keys() - recs.keys()
    if missing:
        raise ValueError(f"{path}: no recommendations for {len(missing):,} test users (e.g. {min(missing)!r})")
    return user_ndcg(recs, targets)


def seed_mean_ndcg(paths: list[Path], targets: dict[str, str]) -> dict[str, float]:
    """Per-user NDCG@10 averaged over the runs; every run must cover every target user."""
    per_run = [covered_user_ndcg(path, targets) for path in paths]
    return {user: sum(run[user] for run in per_run) / len(per_run) for user in targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder whose data/ holds the test targets")
    parser.add_argument("--reference", type=Path, required=True, help="the reference system's recs.jsonl")
    parser.add_argument("--seeds", type=Path, nargs="+", required=True, help="one recs.jsonl per seed")
    args = parser.parse_args()
    targets = targets_for(args.run, "test")
    ours = seed_mean_ndcg(args.seeds, targets)
    reference = covered_user_ndcg(args.reference, targets)
    print(f"seed-mean NDCG@10 {sum(ours.values()) / len(ours):.4f} over {len(args.seeds)} runs, "
          f"reference {sum(reference.values()) / len(reference):.4f}, {len(targets):,} users")
    print("paired (seed-mean − reference):", paired_difference(ours, reference))


if __name__ == "__main__":
    main()
