"""Benchmark checkpoint averaging: the uniform weight mean of a run's k best SFT checkpoints, for several k.

The run must have been trained with `sft.average_top` >= max(k), so that its trainer folder still holds that many
best checkpoints (ranked as the stage ranked them: its `select_by`, from the validation log in the newest
checkpoint's trainer_state.json). Each k is scored on all validation users (where k would be chosen) and all test
users, same beam width, same run:

    python scripts/bench_checkpoint_average.py --dataset scientific --run runs/sft_avg/scientific_scratch_avg5s42 \
        --top 1 2 3 5 --threads 1

Writes benchmarks/results/checkpoint_average_<dataset>.json (`runs`, keyed by run folder; per k the averaged
checkpoints and `valid` / `test` HR/NDCG@5/10).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch
from transformers.trainer_utils import get_last_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from bench_beam_width import RESULTS, load_for_scoring, score  # noqa: E402

from genrec.artifacts import RunPaths, command_line, machine_description, read_manifest, write_json_merged  # noqa: E402
from genrec.train.checkpoint_average import load_average, ranked_checkpoints  # noqa: E402
from genrec.train.sft import SFTConfig  # noqa: E402


def trainer_ranking(stage_dir: Path) -> list[Path]:
    """The sft stage's kept checkpoints, best first by the run's own `select_by` (log of the newest checkpoint)."""
    manifest = read_manifest(stage_dir)
    if manifest is None:
        raise SystemExit(f"no finished sft stage in {stage_dir}")
    config = SFTConfig.model_validate(manifest.config)
    trainer = stage_dir / "trainer"
    newest = get_last_checkpoint(str(trainer)) if trainer.is_dir() else None  # the trainer's own resume lookup
    if newest is None:
        raise SystemExit(f"no checkpoint-* in {trainer}: train with sft.average_top > 1 to keep them")
    history = json.loads((Path(newest) / "trainer_state.json").read_text())["log_history"]
    return ranked_checkpoints(history, trainer, config.select_by, config.greater_is_better)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="names the results file")
    parser.add_argument("--run", type=Path, required=True, help="run folder with data/, sid/, sft/ckpt and sft/trainer")
    parser.add_argument("--top", type=int, nargs="+", default=[1, 3, 5], help="numbers of best checkpoints to average")
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    paths = RunPaths(args.run)
    ranked = trainer_ranking(paths.stage_dir("sft"))
    if max(args.top) > len(ranked):
        raise SystemExit(f"{len(ranked)} checkpoints kept in {args.run}, fewer than --top {max(args.top)}")
    model, builder, trie, splits = load_for_scoring(paths.sft_ckpt, args.run)

    tops = {}
    for k in args.top:
        load_average(model, ranked[:k])
        tops[str(k)] = {"checkpoints": [path.name for path in ranked[:k]],
                        **{name: score(model, trie, builder, rows, args.beams, args.batch_size)
                           for name, rows in splits.items()}}
        print(k, {name: tops[str(k)][name]["metrics"]["ndcg@10"] for name in splits})
    out = RESULTS / f"checkpoint_average_{args.dataset}.json"
    entry = dict(top=tops, beams=args.beams, threads=args.threads, command=command_line(),
                 machine=machine_description(), date=datetime.now(UTC).isoformat(timespec="seconds"))
    write_json_merged(out, {"runs": {str(args.run): entry}}, sections=["runs"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
