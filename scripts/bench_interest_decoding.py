"""Plain constrained beam search vs interest-conditioned decoding, same checkpoint, every test user.

Each variant is one `genrec recommend` process (`--decoding beam|interest`, `--engine hf|vllm`) on the run
folder; its recs.jsonl is scored with the eval module (full-ranking HR/NDCG@5/10) and for breadth:
category coverage@10 (distinct categories in the top 10: the first level under the dataset's root
category, and the finest level), first-level SID codes in the top 10, and intra-list diversity@10
(1 - mean pairwise cosine of the items' text embeddings, all-MiniLM-L6-v2, from embed/item_emb.safetensors);
each interest row also gets its paired per-user NDCG@10 difference to the plain beam (95% interval).
Speed is the stage's users/s (search only), HF and vLLM on the same first --vllm-users test users (the
vLLM lists are checked against HF's).

    nice -n 15 python scripts/bench_interest_decoding.py --dataset scientific
        (run folder runs/idec_<dataset>: data/, sid/, sft/ckpt, embed/ [, label/ for the mined source]
         [, multi/multi_gemirec/model.pt for the gemirec source])
    --section NAME stores the run under that key of the existing JSON (another checkpoint's side-by-side)
    instead of replacing the file's top-level rows.
Each variant runs the run folder's `recommend` stage, so it replaces `recommend/manifest.json` there (recs go to
their own `eval/idec_*` systems): point --run at a copy when the pipeline's own manifest should stay.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.eval.recs import read_recs

RESULTS = REPO_ROOT / "benchmarks" / "results"


def recommend(run_dir: Path, system: str, engine: str, decoding: str, threads: int, users: int | None,
              source: str = "codes", m: int = 4, order: str = "score", penalty: float = 0.1) -> dict:
    """One `genrec recommend` process; returns the stage's metrics (users/s, wall)."""
    batch = 256 if engine == "vllm" else 32
    cmd = [sys.executable, "-m", "genrec.cli", "recommend", "--engine", engine, "--decoding", decoding,
           "--set", f"run_dir={run_dir}", "--set", "recommend.checkpoint=sft", "--set", f"recommend.system={system}",
           "--set", f"recommend.threads={threads}", "--set", f"recommend.batch_size={batch}",
           "--set", f"recommend.interest_source={source}", "--set", f"recommend.num_interests={m}",
           "--set", f"recommend.interest_order={order}", "--set", f"recommend.coverage_penalty={penalty}"]
    if users:
        cmd += ["--set", f"recommend.max_users={users}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    manifest = json.loads((RunPaths(run_dir).stage_dir("recommend") / "manifest.json").read_text())
    metrics = manifest["metrics"]["systems"][system]
    metrics["process_wall_s"] = round(time.perf_counter() - started, 1)
    return metrics


class Breadth:
    """Category coverage and intra-list diversity of top-10 lists."""

    def __init__(self, run_dir: Path) -> None:
        from safetensors import safe_open

        items = pd.read_parquet(RunPaths(run_dir).items)
        paths = items["categories"].fillna("").str.split(",")
        self.top = dict(zip(items["item_id"].astype(str), paths.str[1].fillna(paths.str[0]), strict=True))
        self.leaf = dict(zip(items["item_id"].astype(str), paths.str[-1], strict=True))
        sid_map = pd.read_parquet(RunPaths(run_dir).sid_map)
        self.code = dict(zip(sid_map["item_id"].astype(str), sid_map["codes"].map(lambda c: int(c[0])), strict=True))
        with safe_open(str(RunPaths(run_dir).item_emb), framework="numpy") as f:
            ids = json.loads(f.metadata()["item_ids"])
            text = f.get_tensor("text")
        self.row = {item: n for n, item in enumerate(ids)}
        self.text = text / np.linalg.norm(text, axis=1, keepdims=True)

    def __call__(self, recs: dict[str, list[str]], k: int = 10) -> dict[str, float]:
        tops, leaves, codes, ild = [], [], [], []
        upper = np.triu_indices(k, 1)
        for items in recs.values():
            top = items[:k]
            tops.append(len({self.top[i] for i in top}))
            leaves.append(len({self.leaf[i] for i in top}))
            codes.append(len({self.code[i] for i in top}))
            vecs = self.text[[self.row[i] for i in top]]
            ild.append(1.0 - float((vecs @ vecs.T)[upper].mean()))
        return {f"category_coverage@{k}": round(float(np.mean(tops)), 3),
                f"leaf_category_coverage@{k}": round(float(np.mean(leaves)), 3),
                f"sid_code_coverage@{k}": round(float(np.mean(codes)), 3),
                f"ild@{k}": round(float(np.mean(ild)), 4)}


def covered_metrics(recs: dict[str, list[str]], run_dir: Path) -> dict[str, float]:
    """HR/NDCG@5/10 over the users the lists cover (all test users, or the first --users of them)."""
    from genrec.eval.metrics import topk_metrics
    from genrec.eval.stage import targets_for

    targets = {u: t for u, t in targets_for(run_dir, "test").items() if u in recs}
    return {k: round(v, 4) for k, v in topk_metrics(recs, targets).items()}


def target_code_in_list(recs: dict[str, list[str]], run_dir: Path, breadth: Breadth) -> float:
    """Share of users whose test target's first-level SID code is among their list's codes (for interest
    decoding: among the interests that got a slot) - how well the interests predict the target's category."""
    from genrec.eval.stage import targets_for

    targets = targets_for(run_dir, "test")
    hits = [breadth.code[targets[u]] in {breadth.code[i] for i in items} for u, items in recs.items()]
    return round(float(np.mean(hits)), 4)


@functools.cache
def beam_user_ndcg(run_dir: Path) -> tuple[dict[str, str], dict[str, float]]:
    """The plain beam's users' test targets and per-user NDCG@10, read once per run folder (every interest row is
    paired against them)."""
    from genrec.eval.metrics import user_ndcg
    from genrec.eval.stage import targets_for

    beam = read_recs(RunPaths(run_dir).recs("idec_hf_beam"))
    targets = {u: t for u, t in targets_for(run_dir, "test").items() if u in beam}
    return targets, user_ndcg(beam, targets)


def paired_vs_beam(recs: dict[str, list[str]], run_dir: Path) -> dict[str, float]:
    """This row's per-user NDCG@10 difference to the plain beam on the beam's users, with its 95% interval
    (`paired_ndcg@10_vs_beam`): whether "equal NDCG@10" holds is a paired question, not one of two means."""
    from genrec.eval.metrics import paired_difference, user_ndcg

    targets, beam = beam_user_ndcg(run_dir)
    return paired_difference(user_ndcg(recs, targets), beam)


def rescore(out: Path, section: str | None, run_dir: Path, breadth: Breadth, command: str) -> None:
    """Recompute every HF row's accuracy (over the covered users), target-code share and paired difference to the
    plain beam from its recs.jsonl."""
    data = json.loads(out.read_text())
    result = data[section] if section else data
    for name, row in result["hf"].items():
        recs = read_recs(RunPaths(run_dir).recs(f"idec_hf_{name}"))
        row.update(covered_metrics(recs, run_dir), target_code_in_list=target_code_in_list(recs, run_dir, breadth))
        if name != "beam" and "beam" in result["hf"]:
            row["paired_ndcg@10_vs_beam"] = paired_vs_beam(recs, run_dir)
    result["command"] = f"{result['command']} && {command}"
    save(out, result, section)


def interests_per_list(path: Path, k: int = 10) -> float:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return round(float(np.mean([len(set(line["interests"][:k])) for line in lines])), 3) if lines else 0.0


def users_with_interests(run_dir: Path, result: dict, breadth: Breadth) -> dict:
    """Every HF variant re-scored on the test users that have curated (label 1) interests."""
    from genrec.eval.metrics import topk_metrics
    from genrec.eval.stage import targets_for

    table = pd.read_parquet(RunPaths(run_dir).interests_labelled, columns=["kind", "entity_id", "label"])
    users = set(table.query("kind == 'user' and label == 1")["entity_id"].astype(str))
    targets = {u: t for u, t in targets_for(run_dir, "test").items() if u in users}
    out: dict = {"users": len(targets)}
    for name in result["hf"]:
        recs = {u: r for u, r in read_recs(RunPaths(run_dir).recs(f"idec_hf_{name}")).items() if u in targets}
        if len(recs) == len(targets) and targets:
            out[name] = {**{k: round(v, 4) for k, v in topk_metrics(recs, targets).items()}, **breadth(recs)}
    return out


def save(out: Path, result: dict, section: str | None) -> None:
    """The whole file, or (with a section) this run under its key beside the file's other entries."""
    if section:
        result = {**(json.loads(out.read_text()) if out.is_file() else {}), section: result}
    write_json(out, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scientific")
    parser.add_argument("--run", type=Path, default=None, help="run folder (default runs/idec_<dataset>)")
    parser.add_argument("--users", type=int, default=0, help="HF runs: first N test users (0 = all)")
    parser.add_argument("--vllm-users", type=int, default=1024, help="vLLM runs: first N test users (0 = skip)")
    parser.add_argument("--variants", default="codes:4:score,codes:8:score,codes:8:interleave,mined:4:score",
                        help="interest decoding variants source:m:order[:penalty], source codes|mined|gemirec "
                             "(mined is skipped when the run has no label/), order score|interleave|coverage "
                             "(penalty: coverage_penalty, default 0.1)")
    parser.add_argument("--section", default=None,
                        help="write this run under this key of the existing JSON, keeping every other entry")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-beam", action="store_true", help="keep the plain-beam rows already in the JSON")
    parser.add_argument("--speed-only", action="store_true", help="keep every HF row in the JSON; redo the speed runs")
    parser.add_argument("--rescore", action="store_true", help="only re-score the HF rows in the JSON (or --section) "
                                                               "from their recs.jsonl")
    args = parser.parse_args()
    run_dir = (args.run or REPO_ROOT / "runs" / f"idec_{args.dataset}").resolve()
    out = RESULTS / f"interest_decoding_{args.dataset}.json"
    if args.section and (args.speed_only or args.skip_beam):
        parser.error("--section writes a fresh side-by-side; it does not combine with --speed-only / --skip-beam")
    specs = [(*v.split(":"), "0.1")[:4] for v in args.variants.split(",")]
    if any(src == "mined" for src, *_ in specs) and not RunPaths(run_dir).interests_labelled.is_file():
        print(f"no {RunPaths(run_dir).interests_labelled}: mined source skipped", flush=True)
        specs = [v for v in specs if v[0] != "mined"]
    variants = [("beam", "beam", "codes", 0, "score", 0.0)]
    variants += [(f"interest_{src}_m{m}_{order}" + (f"_p{float(p):g}" if order == "coverage" else ""), "interest", src,
                  int(m), order, float(p)) for src, m, order, p in specs]
    breadth = Breadth(run_dir)
    command = command_line()
    if args.rescore:
        rescore(out, args.section, run_dir, breadth, command)
        return
    result = {"command": command, "machine": machine_description(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "dataset": args.dataset,
              "run": str(run_dir), "checkpoint": str(RunPaths(run_dir).sft_ckpt.resolve()), "num_beams": 20, "k": 20,
              "threads": args.threads, "load_average_1min_at_start": round(os.getloadavg()[0], 2),
              "diversity_note": "ild@10 = 1 - mean pairwise cosine of all-MiniLM-L6-v2 item text embeddings",
              "category_note": "category = first level under the root of the item's category path; leaf = finest",
              "hf": {}, "speed": {}}
    if args.speed_only:
        previous = json.loads(out.read_text())
        result["hf"], result["command"] = previous["hf"], f"{previous['command']} && {result['command']}"
        for key in ("load_average_1min_at_start", "date"):
            result[f"hf_{key}"] = previous.get(f"hf_{key}", previous[key])
    if args.skip_beam and out.is_file():  # later variants (e.g. the mined source) beside earlier rows
        previous = json.loads(out.read_text())
        result["hf"], result["speed"] = previous["hf"], previous["speed"]
        result["command"] = f"{previous['command']} && {result['command']}"
        variants = variants[1:]
    for name, decoding, source, m, order, penalty in [] if args.speed_only else variants:
        stage = recommend(run_dir, f"idec_hf_{name}", "hf", decoding, args.threads, args.users or None, source,
                          m if decoding == "interest" else 4, order, penalty)
        path = RunPaths(run_dir).recs(f"idec_hf_{name}")
        recs = read_recs(path)
        row = {**covered_metrics(recs, run_dir), "target_code_in_list": target_code_in_list(recs, run_dir, breadth),
               **breadth(recs), "users": len(recs), "users_per_s": stage["users_per_s"],
               "search_wall_s": stage["search_wall_s"], "decoding": decoding}
        if decoding == "interest":
            row.update(interest_source=source, num_interests=m, interest_order=order,
                       interests_per_list_top10=interests_per_list(path))
            if order == "coverage":
                row["coverage_penalty"] = penalty
            row.update({k: stage[k] for k in ("users_with_interests", "interest_texts", "interest_model",
                                              "dictionary_codes") if k in stage})
            row["paired_ndcg@10_vs_beam"] = paired_vs_beam(recs, run_dir)
        result["hf"][name] = row
        print(name, json.dumps(row), flush=True)
        save(out, result, args.section)
    if args.vllm_users:  # speed on both engines over the same users; vLLM lists checked against HF's
        for name, decoding, source, m, order, penalty in variants[:2]:  # plain beam and the first interest variant
            row = {}
            for engine in ("hf", "vllm"):
                system = f"idec_{engine}{args.vllm_users}_{name}"
                stage = recommend(run_dir, system, engine, decoding, args.threads, args.vllm_users, source,
                                  m if decoding == "interest" else 4,
                                  order, penalty)
                row[engine] = {"users_per_s": stage["users_per_s"], "search_wall_s": stage["search_wall_s"],
                               "process_wall_s": stage["process_wall_s"]}
            hf = read_recs(RunPaths(run_dir).recs(f"idec_hf{args.vllm_users}_{name}"))
            vllm = read_recs(RunPaths(run_dir).recs(f"idec_vllm{args.vllm_users}_{name}"))
            row.update(users=len(vllm), lists_equal_hf_vllm=sum(vllm[u] == hf[u] for u in vllm),
                       vllm_over_hf=round(row["vllm"]["users_per_s"] / row["hf"]["users_per_s"], 2))
            result["speed"][name] = row
            print("speed", name, json.dumps(row), flush=True)
            save(out, result, args.section)
    mined = [name for name, *_ in variants if "_mined_" in name]
    if mined:  # most users have no curated interests (their lists equal the codes source's): compare on those who do
        result["users_with_curated_interests"] = users_with_interests(run_dir, result, breadth)
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    save(out, result, args.section)
    print(f"-> {out}" + (f" [{args.section}]" if args.section else ""))


if __name__ == "__main__":
    main()
