"""Seed ensemble of SFT checkpoints on one SID map: re-rank the union of the members' top-k by their mean log-prob.

Each member is a checkpoint trained on the run's SID map with its own seed, with its test `recs.jsonl`. Per test user,
the candidates are the union of the members' lists; each candidate is scored by the mean over members of log p(SID |
prompt) (the score beam search ranks by) and the list is re-ranked. That is the ensemble's exact ranking of those
candidates; an item outside every member's top-k is not considered. Writes the ensemble's `recs.jsonl` and
`benchmarks/results/ensemble_<dataset>.json` (metrics of members, ensemble and reference systems; the ensemble's paired
NDCG@10 difference to each; candidates per user; wall time).

    OMP_NUM_THREADS=1 python scripts/bench_ensemble.py --dataset scientific --run runs/scientific_text \
        --member s42=runs/scientific_text/sft/ckpt,runs/scientific_text/eval/sft/recs.jsonl \
        --member s45=runs/sft_map2/scientific_scratch_map2avg3s45/sft/ckpt,\
runs/sft_map2/scientific_scratch_map2avg3s45/eval/sft_scratch/recs.jsonl \
        --compare sasrec=runs/scientific_text/eval/sasrec/recs.jsonl --out runs/ensemble_scientific
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.eval.metrics import ensemble_report
from genrec.eval.recs import read_recs, write_recs

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def ensemble_rank(models: Sequence[PreTrainedModel], prompt: list[int], candidates: dict[str, list[int]],
                  pad_token_id: int) -> list[str]:
    """The candidate items (item -> SID token ids) ordered by their mean log-prob over the models, best first."""
    from genrec.train.grpo import sid_logprobs

    items = list(candidates)
    sids = [candidates[item] for item in items]
    totals = [0.0] * len(items)
    for model in models:
        for i, score in enumerate(sid_logprobs(model, [prompt] * len(items), sids, pad_token_id)):
            totals[i] += score / len(models)
    return [item for _, item in sorted(zip(totals, items, strict=True), key=lambda pair: -pair[0])]


def parse_member(spec: str) -> tuple[str, Path, Path]:
    """NAME=CKPT,RECS -> (name, checkpoint folder, recs.jsonl)."""
    name, _, paths = spec.partition("=")
    ckpt, _, recs = paths.partition(",")
    if not name or not ckpt or not recs:
        raise SystemExit(f"--member {spec!r}: expected NAME=CHECKPOINT_DIR,RECS_JSONL")
    return name, Path(ckpt), Path(recs)


def main() -> None:
    import torch

    from genrec.data import load_sequences
    from genrec.model.checkpoint import load_checkpoint
    from genrec.model.sources import HistoryPrompts, read_sid_map
    from genrec.model.tokenizer import sid_token_ids
    from genrec.progress import progress_bar

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="scientific")
    parser.add_argument("--run", type=Path, required=True, help="run folder: test split, SID map, item titles")
    parser.add_argument("--member", action="append", required=True, help="NAME=CHECKPOINT_DIR,RECS_JSONL (2 or more)")
    parser.add_argument("--compare", action="append", default=[], help="NAME=recs.jsonl of a reference system")
    parser.add_argument("--k", type=int, default=20, help="candidates taken from each member's list")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder for the ensemble's recs.jsonl")
    parser.add_argument("--results", type=Path, default=None, help="default benchmarks/results/ensemble_<dataset>.json")
    args = parser.parse_args()
    members = [parse_member(spec) for spec in args.member]
    if len(members) < 2:
        raise SystemExit("an ensemble needs at least two --member")

    torch.set_num_threads(args.threads)
    loaded = [load_checkpoint(ckpt) for _, ckpt, _ in members]
    tokenizer, info = loaded[0][1], loaded[0][2]
    for (name, ckpt, _), (_, other, _) in zip(members[1:], loaded[1:], strict=True):
        if other.get_vocab() != tokenizer.get_vocab():
            raise SystemExit(f"member {name} ({ckpt}) has another vocabulary than {members[0][0]}: not the same SID map")
    models = [model.eval() for model, _, _ in loaded]
    sid_map = read_sid_map(RunPaths(args.run).sid_map)
    sid_ids = {str(item): sid_token_ids(tokenizer, sid) for item, sid in zip(sid_map["item_id"], sid_map["sid"],
                                                                               strict=True)}
    prompts = HistoryPrompts.from_run(args.run, tokenizer, info, sid_map)
    sequences = load_sequences(args.run)
    test = sequences[sequences["split"] == "test"]
    targets = dict(zip(test["user_id"].astype(str), test["target"].astype(str), strict=True))
    member_recs = {name: read_recs(recs) for name, _, recs in members}

    start = time.perf_counter()
    ranked: dict[str, list[str]] = {}
    sizes = []
    with progress_bar() as bar:
        task = bar.add_task("ensemble", total=len(test), status="")
        for user, history in zip(test["user_id"].astype(str), test["history"], strict=True):
            union = dict.fromkeys(item for recs in member_recs.values() for item in recs.get(user, [])[:args.k])
            sizes.append(len(union))
            ranked[user] = ensemble_rank(models, prompts.for_user(user, list(history)),
                                         {item: sid_ids[item] for item in union}, tokenizer.pad_token_id)[:args.k]
            bar.advance(task)
    wall = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    write_recs(args.out / "recs.jsonl", ranked.items())

    systems = {**member_recs, **{name: read_recs(Path(path)) for name, path in (c.split("=", 1) for c in args.compare)},
               "ensemble": ranked}
    result = {
        "command": command_line(), "machine": machine_description(), "dataset": args.dataset,
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "run": str(args.run),
        "members": {name: {"checkpoint": str(ckpt), "recs": str(recs)} for name, ckpt, recs in members},
        **ensemble_report(systems, targets, "ensemble"),
        "candidates_per_user": sum(sizes) / len(sizes), "rerank_wall_s": round(wall, 1),
        "users_per_s": round(len(test) / wall, 2),
    }
    write_json(args.results or REPO_ROOT / "benchmarks" / "results" / f"ensemble_{args.dataset}.json", result)
    print({name: round(m["ndcg@10"], 4) for name, m in result["metrics"].items()})


if __name__ == "__main__":
    main()
