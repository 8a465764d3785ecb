"""Benchmark the beam width of constrained beam search: accuracy and speed of one checkpoint at several widths.

Beam search is approximate: a wider beam can find higher-scoring SIDs that a narrow one pruned early, which
may change the top 10 (and costs time). Each width is scored on the validation split (where a width would be
chosen) and on the test split, with users/s measured in the same run so the speed ratios are comparable.

    python scripts/bench_beam_width.py --run runs/scientific --checkpoint sft --beams 20 50 --threads 2

Writes benchmarks/results/beam_width_<dataset>.json (`checkpoints`, keyed by checkpoint and user count; `widths`:
per width `valid` / `test` HR/NDCG@5/10 and `users_per_s`).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from genrec.artifacts import RunPaths, command_line, machine_description, write_json_merged
from genrec.config import REPO_ROOT
from genrec.data import load_items, load_sequences
from genrec.decode.stage import checkpoint_path
from genrec.decode.trie import SidTrie
from genrec.model.checkpoint import load_checkpoint
from genrec.model.sources import read_sid_map
from genrec.train.sft_data import ExampleBuilder, SftSources, history_examples
from genrec.train.sft_trainer import RankingProbe

RESULTS = REPO_ROOT / "benchmarks" / "results"


def score(model, trie: SidTrie, builder: ExampleBuilder, rows, num_beams: int, batch_size: int) -> dict:
    """HR/NDCG@5/10 of the top 10 of `num_beams`-wide constrained beam search on these rows, and users/s."""
    probe = RankingProbe(users=list(rows["user_id"]), prompts=[prompt for prompt, _ in history_examples(builder, rows)],
                         targets=dict(zip(rows["user_id"], rows["target"], strict=True)), trie=trie,
                         num_beams=num_beams, batch_size=batch_size)
    start = time.perf_counter()
    metrics = probe.metrics(model)
    wall = time.perf_counter() - start
    return dict(metrics=metrics, users=len(rows), users_per_s=round(len(rows) / wall, 2), wall_s=round(wall, 1))


def load_for_scoring(ckpt: Path, run: Path) -> tuple:
    """(model, example builder, trie of the run's items, {"valid": rows, "test": rows}) for `score`."""
    model, tokenizer, info = load_checkpoint(ckpt)
    if info.interests or info.titles:
        raise SystemExit(f"{ckpt}: only SID-only checkpoints (scratch kind) are supported")
    sid_map = read_sid_map(RunPaths(run).sid_map)
    items = load_items(run)
    sources = SftSources(load_sequences(run), dict(zip(sid_map["item_id"], sid_map["sid"], strict=True)), {}, {})
    builder = ExampleBuilder(tokenizer, info, sources)
    trie = SidTrie.from_sid_map(sid_map[sid_map["item_id"].isin(set(items["item_id"]))], tokenizer)
    return model, builder, trie, {name: sources.sequences.query(f"split == '{name}'") for name in ("valid", "test")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="names the results file")
    parser.add_argument("--run", type=Path, required=True, help="run folder with data/, sid/ and the checkpoint")
    parser.add_argument("--checkpoint", default="sft", help="sft, grpo or a checkpoint folder")
    parser.add_argument("--beams", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--max-users", type=int, default=None, help="first N users of each split (default: all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ckpt = checkpoint_path(args.checkpoint, args.run)
    model, builder, trie, splits = load_for_scoring(ckpt, args.run)
    if args.max_users is not None:
        splits = {name: rows.head(args.max_users) for name, rows in splits.items()}

    widths = {}
    for num_beams in args.beams:
        widths[str(num_beams)] = {name: score(model, trie, builder, rows, num_beams, args.batch_size)
                                  for name, rows in splits.items()}
        print(num_beams, {name: (r["metrics"]["ndcg@10"], r["users_per_s"]) for name, r in widths[str(num_beams)].items()})
    out = RESULTS / f"beam_width_{args.dataset}.json"
    entry = dict(widths=widths, batch_size=args.batch_size, threads=args.threads, command=command_line(),
                 machine=machine_description(), date=datetime.now(UTC).isoformat(timespec="seconds"))
    key = f"{ckpt} ({args.max_users or 'all'} users per split)"
    write_json_merged(out, {"checkpoints": {key: entry}}, sections=["checkpoints"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
