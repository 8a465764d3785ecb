"""How well an SFT checkpoint already ranks GRPO's training prompts, beside validation users.

GRPO rewards hits on training rows (`grpo.max_prompts` of them, drawn with `grpo.seed`). If the SFT model ranks those
far better than held-out users, RL on them mostly sharpens memorised targets. Same probe (constrained beam search,
NDCG/HR@5/10) on the first `--rows` of GRPO's training sample and of its validation sample.

    OMP_NUM_THREADS=1 python scripts/bench_insample.py --run runs/scientific_text
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.train.grpo import GRPOStageConfig


def split_metrics(run_dir: Path, rows: int, grpo: GRPOStageConfig) -> dict[str, dict[str, float]]:
    """Probe metrics of `run_dir`'s SFT checkpoint on GRPO's training prompts and on its validation users."""
    import torch

    from genrec.data import load_sequences
    from genrec.decode.trie import SidTrie
    from genrec.model.checkpoint import load_checkpoint
    from genrec.model.sources import HistoryPrompts, read_sid_map
    from genrec.train.grpo import prompt_rows, rows_probe

    torch.set_num_threads(grpo.threads)
    paths = RunPaths(run_dir)
    model, tokenizer, info = load_checkpoint(paths.sft_ckpt)
    sid_map = read_sid_map(paths.sid_map)
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    prompts = HistoryPrompts.from_run(run_dir, tokenizer, info, sid_map)
    metrics = {}
    for split, sample in zip(("train", "valid"), prompt_rows(load_sequences(run_dir), grpo), strict=True):
        sample = sample.head(rows)
        metrics[split] = {**rows_probe(prompts, sample, trie, grpo).metrics(model), "rows": len(sample)}
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder with data, sid and sft/ckpt")
    parser.add_argument("--rows", type=int, default=2000, help="rows probed per split")
    parser.add_argument("--valid-users", type=int, default=2000, help="GRPO's validation sample (grpo.valid_users)")
    parser.add_argument("--num-beams", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/insample_<run name>.json")
    args = parser.parse_args()
    grpo = GRPOStageConfig(valid_users=args.valid_users, num_beams=args.num_beams, threads=args.threads)
    metrics = split_metrics(args.run, args.rows, grpo)
    out = args.out or REPO_ROOT / "benchmarks" / "results" / f"insample_{args.run.name}.json"
    write_json(out, {"command": command_line(), "machine": machine_description(),
                     "date": datetime.now(UTC).isoformat(timespec="seconds"), "run": str(args.run),
                     "grpo_sample": {"max_prompts": grpo.max_prompts, "seed": grpo.seed}, "metrics": metrics})
    print(metrics)


if __name__ == "__main__":
    main()
