"""Choose `recommend.coverage_penalty` (interest_order: coverage) on validation users, never on test.

The first --users validation rows (history = the items before the validation target; the test target is never
read) are decoded once with transformers: the decoder's top-m first-level codes as beam groups plus the plain
whole-catalogue group (`MergeRule("coverage").plan`). The same group results are then merged with every
penalty of the grid (`MergeRule.apply`), so the rows differ only in the merge. The plain group's own top 20 is
the plain beam search (the baseline). Per penalty: HR/NDCG@5/10, categories@10, first-level codes@10, ILD@10
and the paired per-user NDCG@10 difference to the plain beam (95% interval); an ablation row per penalty
(`plain_reranked_<p>`) applies the same merge to the plain group alone (what the interest groups add).
Chosen (among the `coverage_<p>` rows): the largest penalty whose mean validation NDCG@10 is not below the plain beam's.

    python scripts/tune_coverage_penalty.py --dataset beauty --run runs/beauty --users 8000 --m 8
    -> benchmarks/results/coverage_penalty_<dataset>.json
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_interest_decoding import RESULTS, Breadth  # noqa: E402

from genrec.artifacts import RunPaths, command_line, machine_description, write_json  # noqa: E402

GRID = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def decode_validation(run_dir: Path, users: int, m: int, num_beams: int, k: int, batch_size: int) -> dict:
    """Prompts of the first `users` validation rows, decoded once into their groups' results."""
    from genrec.data import load_items, load_sequences
    from genrec.decode.hf_beam import root_logprobs, search_groups
    from genrec.decode.interest import MergeRule
    from genrec.decode.interest_sources import interest_selector
    from genrec.decode.trie import SidTrie
    from genrec.model.checkpoint import load_checkpoint
    from genrec.model.sources import HistoryPrompts, read_sid_map
    from genrec.progress import progress_bar

    paths = RunPaths(run_dir)
    model, tokenizer, info = load_checkpoint(paths.sft_ckpt)
    if info.interests:
        raise ValueError(f"{paths.sft_ckpt} reads interests in its prompt; this tuner builds history-only prompts")
    sid_map = read_sid_map(paths.sid_map)
    items = load_items(run_dir)
    trie = SidTrie.from_sid_map(sid_map[sid_map["item_id"].isin(set(items["item_id"]))], tokenizer)
    rows = load_sequences(run_dir).query("split == 'valid'").head(users)
    histories = [[str(i) for i in h] for h in rows["history"]]
    prompter = HistoryPrompts.from_run(run_dir, tokenizer, info, sid_map, items)
    prompts = [prompter.ids(h) for h in histories]
    catalogue = sid_map[sid_map["item_id"].isin(set(trie.item_ids))]
    select_for, _ = interest_selector("codes", m, num_beams, run_dir, catalogue, tokenizer, list(rows["user_id"]))
    batches = []
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("decode validation users", total=len(prompts), status="")
        for first in range(0, len(prompts), batch_size):
            chunk = prompts[first:first + batch_size]
            root = root_logprobs(model, chunk, trie, batch_size)
            chosen = select_for([], histories[first:first + batch_size], k)(root)
            groups = MergeRule("coverage").plan(chosen, root, num_beams, k)
            batches.append((groups, search_groups(model, chunk, groups, trie, batch_size), len(chunk)))
            bar.advance(task, len(chunk))
    return dict(batches=batches, users=[str(u) for u in rows["user_id"]],
                targets=dict(zip(rows["user_id"].astype(str), rows["target"].astype(str), strict=True)),
                code_of=trie.first_token, wall_s=time.perf_counter() - start)


def score(recs: dict[str, list[str]], targets: dict[str, str], breadth: Breadth) -> dict:
    from genrec.eval.metrics import topk_metrics

    return {**{key: round(v, 5) for key, v in topk_metrics(recs, targets).items()}, **breadth(recs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run", type=Path, required=True, help="run folder with data/, sid/, embed/, sft/ckpt")
    parser.add_argument("--users", type=int, default=5000, help="first N validation users")
    parser.add_argument("--m", type=int, default=8, help="interests (code groups) per user")
    parser.add_argument("--grid", default=",".join(map(str, GRID)), help="comma-separated penalties")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/coverage_penalty_<dataset>.json")
    args = parser.parse_args()
    import torch

    from genrec.decode.interest import MergeRule
    from genrec.eval.metrics import paired_difference, user_ndcg

    torch.set_num_threads(args.threads)
    run_dir = args.run.resolve()
    decoded = decode_validation(run_dir, args.users, args.m, num_beams=20, k=20, batch_size=32)
    breadth, targets, users = Breadth(run_dir), decoded["targets"], decoded["users"]

    def lists(rule: MergeRule | None, plain_only: bool = False) -> dict[str, list[str]]:
        """Every user's list: the plain group's own ranking (rule None) or the rule's merge of every group (or,
        `plain_only`, of the plain group alone: the penalty re-ranking the plain beam's items, no interest groups)."""
        out: list[list[str]] = []
        for groups, results, n in decoded["batches"]:
            if plain_only:
                kept = [(g, r) for g, r in zip(groups, results, strict=True) if g.plain]
                groups, results = [g for g, _ in kept], [r for _, r in kept]
            if rule is None:
                out += [[item for item, _ in r[:20]] for g, r in zip(groups, results, strict=True) if g.plain]
            else:
                out += [[r.item for r in recs] for recs in rule.apply(groups, results, n, 20, decoded["code_of"])]
        return dict(zip(users, out, strict=True))

    plain = lists(None)
    base = user_ndcg(plain, targets)
    rows = {"plain_beam": score(plain, targets, breadth)}
    for penalty in (float(p) for p in args.grid.split(",")):
        recs = lists(MergeRule("coverage", penalty))
        rows[f"coverage_{penalty:g}"] = {"coverage_penalty": penalty, **score(recs, targets, breadth),
                                         "paired_ndcg@10_vs_beam": paired_difference(user_ndcg(recs, targets), base)}
        alone = lists(MergeRule("coverage", penalty), plain_only=True)
        rows[f"plain_reranked_{penalty:g}"] = {"coverage_penalty": penalty, **score(alone, targets, breadth),
                                               "paired_ndcg@10_vs_beam": paired_difference(user_ndcg(alone, targets),
                                                                                           base)}
        print(penalty, rows[f"coverage_{penalty:g}"], flush=True)
    kept = [row["coverage_penalty"] for name, row in rows.items()
            if name.startswith("coverage_") and row["paired_ndcg@10_vs_beam"]["ndcg@10_diff"] >= 0]
    result = {"command": command_line(), "machine": machine_description(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "dataset": args.dataset, "run": str(run_dir),
              "checkpoint": str(RunPaths(run_dir).sft_ckpt.resolve()), "split": "valid", "users": len(users),
              "num_interests": args.m, "num_beams": 20, "k": 20, "decode_wall_s": round(decoded["wall_s"], 1),
              "rule": "largest penalty whose mean validation NDCG@10 is not below the plain beam's",
              "chosen_penalty": max(kept) if kept else None, "rows": rows}
    out = args.out or RESULTS / f"coverage_penalty_{args.dataset}.json"
    write_json(out, result)
    print(f"chosen penalty {result['chosen_penalty']} -> {out}")


if __name__ == "__main__":
    main()
