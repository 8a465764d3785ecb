"""Where the vLLM constrained beam search spends its time, next to the HF search, on the same users.

Offline, in-process, one checkpoint: the first `--users` scientific test users (prompts as the recommend
stage builds them), 20 beams. Times HF `constrained_beam_search` (32 users a batch) and
`VllmBeamSearch.search` (all users in one batch: one `generate` call per SID level), then runs the vLLM
search once more under cProfile and splits its time into vLLM's parts (request intake, scheduler, model
forward, sampler/log-probs, output processing) and genrec's beam bookkeeping. `--engine-arg key=value`
overrides an engine setting (e.g. max_num_seqs=1024) to compare variants; each variant is one labelled
entry of benchmarks/results/vllm_profile.json.

    nice -n 15 python scripts/bench_vllm_profile.py --label default
    nice -n 15 python scripts/bench_vllm_profile.py --label seqs1024 --engine-arg max_num_seqs=1024
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.vllm_threads import configure_cpu_env

RESULTS = REPO_ROOT / "benchmarks" / "results" / "vllm_profile.json"
DEFAULT_CKPT = REPO_ROOT / "runs" / "bench_sft" / "scientific_scratch_textrq12ep" / "sft" / "ckpt"
# (part, file suffix, function): cumulative times of these calls inside the search; they do not nest
PARTS = [
    ("request intake (add_request: validation, SamplingParams copy)", "v1/engine/llm_engine.py", "add_request"),
    ("scheduler (schedule + update_from_output)", "v1/core/sched/scheduler.py", "schedule"),
    ("scheduler (schedule + update_from_output)", "v1/core/sched/scheduler.py", "update_from_output"),
    ("model forward", "v1/worker/gpu_model_runner.py", "_model_forward"),
    ("sampler + requested log-probs", "v1/sample/sampler.py", "forward"),
    ("output processing", "v1/engine/output_processor.py", "process_outputs"),
    ("genrec beam bookkeeping (plan_step, advance, log-prob lookup)", "genrec/decode/vllm_beam.py", "plan_step"),
    ("genrec beam bookkeeping (plan_step, advance, log-prob lookup)", "genrec/decode/vllm_beam.py", "advance"),
    ("genrec beam bookkeeping (plan_step, advance, log-prob lookup)", "genrec/decode/vllm_beam.py", "_allowed_logprobs"),
]


def prompts_and_trie(ckpt: Path, users: int) -> tuple[list[list[int]], Any]:
    """The recommend stage's prompts for the first `users` test users of the checkpoint's run, and the trie."""
    from transformers import AutoTokenizer

    from genrec.data import load_sequences
    from genrec.decode.trie import SidTrie
    from genrec.model.checkpoint import load_info
    from genrec.model.sources import HistoryPrompts, read_sid_map

    run_dir = ckpt.parent.parent
    tokenizer, info = AutoTokenizer.from_pretrained(ckpt), load_info(ckpt)
    sid_map = read_sid_map(RunPaths(run_dir).sid_map)
    prompter = HistoryPrompts.from_run(run_dir, tokenizer, info, sid_map)
    test = load_sequences(run_dir).query("split == 'test'").head(users)
    prompts = [prompter.ids(list(h)) for h in test["history"]]
    return prompts, SidTrie.from_sid_map(sid_map, tokenizer)


def breakdown(profile: cProfile.Profile, total: float) -> dict[str, float]:
    """Seconds per part (PARTS) of a profiled search, plus the rest."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    parts: dict[str, float] = {}
    for part, suffix, name in PARTS:
        seconds = sum(v[3] for (file, _, func), v in stats.items() if file.endswith(suffix) and func == name)
        parts[part] = parts.get(part, 0.0) + seconds
    parts["other (generate plumbing, Python)"] = total - sum(parts.values())
    return {k: round(v, 3) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CKPT, help="a genrec checkpoint in a run folder")
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--num-beams", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the HF search")
    parser.add_argument("--label", default="default", help="name of this variant in the results file")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=INT")
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from genrec.decode import vllm_beam

    ckpt = args.checkpoint.resolve()
    prompts, trie = prompts_and_trie(ckpt, args.users)
    k = min(10, args.num_beams)
    entry: dict[str, Any] = {"checkpoint": str(ckpt), "users": len(prompts), "num_beams": args.num_beams,
                             "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
                             "date": datetime.now(UTC).isoformat(timespec="seconds"),
                             "load_average_1min_at_start": round(os.getloadavg()[0], 1)}
    if not args.skip_hf:
        from genrec.decode.hf_beam import constrained_beam_search
        from genrec.model.checkpoint import load_checkpoint

        model, _, _ = load_checkpoint(ckpt)
        constrained_beam_search(model, prompts[:32], trie, args.num_beams, k, 32)  # warm-up
        started = time.perf_counter()
        constrained_beam_search(model, prompts, trie, args.num_beams, k, 32)
        entry["hf_users_per_s"] = round(len(prompts) / (time.perf_counter() - started), 2)
        del model

    overrides = {key: int(value) for key, value in (a.split("=", 1) for a in args.engine_arg)}
    configure_cpu_env()
    from vllm import LLM

    search = vllm_beam.VllmBeamSearch(LLM(**(vllm_beam.engine_kwargs(ckpt) | overrides)), trie)
    entry["engine_overrides"] = overrides
    search.search(prompts[:32], args.num_beams, k)  # warm-up
    calls: list[tuple[int, int, float]] = []  # (queries, prompt tokens, seconds) per generate call
    score = search._score

    def timed(queries: list) -> list:
        started = time.perf_counter()
        out = score(queries)
        calls.append((len(queries), sum(len(q.token_ids) for q in queries), time.perf_counter() - started))
        return out

    search._score = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    search.search(prompts, args.num_beams, k, batch_size=len(prompts))
    wall = time.perf_counter() - started
    entry["vllm_users_per_s"] = round(len(prompts) / wall, 2)
    if "hf_users_per_s" in entry:
        entry["vllm_over_hf"] = round(entry["vllm_users_per_s"] / entry["hf_users_per_s"], 2)
    entry["engine_requests_per_user"] = round(sum(c[0] for c in calls) / len(prompts), 1)
    entry["prompt_tokens_per_user"] = round(sum(c[1] for c in calls) / len(prompts), 1)
    entry["generate_calls"] = [{"queries": q, "prompt_tokens": t, "seconds": round(s, 3)} for q, t, s in calls]
    entry["engine_requests_per_s"] = round(sum(c[0] for c in calls) / sum(c[2] for c in calls), 1)

    profile = cProfile.Profile()
    profile.enable()
    started = time.perf_counter()
    search.search(prompts, args.num_beams, k, batch_size=len(prompts))
    total = time.perf_counter() - started
    profile.disable()
    entry["profiled_search_s"] = round(total, 3)
    entry["profile_s"] = breakdown(profile, total)
    entry["profile_share"] = {part: round(s / total, 3) for part, s in entry["profile_s"].items()}

    result = json.loads(args.out.read_text()) if args.out.is_file() else {"variants": {}}
    result.update(command=command_line(), machine=machine_description())
    result["variants"][args.label] = entry
    write_json(args.out, result)
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
