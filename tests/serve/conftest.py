"""A tiny served run (data, SID map, curated interests, a float32 scratch checkpoint) and a real server on it.

The server is `genrec serve` in a subprocess bound to 127.0.0.1 on a free port; tests talk to it over HTTP.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from local_server import free_port, local_server
from tiny_runs import save_random_checkpoint, write_labelled_interests, write_sid_map

from genrec.artifacts import RunPaths
from genrec.data import DataConfig
from genrec.data import run as prepare_data
from genrec.model import ScratchConfig

N_ITEMS, N_USERS = 40, 12
API_KEY = "test-key-123"


def build_run(run_dir: Path) -> Path:
    """Write a complete run folder for serving; returns it."""
    folder = run_dir.parent / "dataset"
    folder.mkdir(parents=True)
    sequences = {str(u): [(u * 3 + 5 * j) % N_ITEMS for j in range(4 + u % 4)] for u in range(N_USERS)}
    (folder / "Tiny.inter.json").write_text(json.dumps(sequences))
    meta = {str(i): {"title": f"item {i}", "description": "", "brand": "b", "categories": "c"} for i in range(N_ITEMS)}
    (folder / "Tiny.item.json").write_text(json.dumps(meta))
    prepare_data(DataConfig(path=folder), run_dir)

    paths = RunPaths(run_dir)
    sid_map = write_sid_map(paths, [(i % 5, (i // 5) % 4, i // 20) for i in range(N_ITEMS)])
    write_labelled_interests(paths, [("user", "0", "field chemistry", 0.9, 1), ("user", "0", "not kept", 0.2, 0),
                                     ("user", "0", "lab safety", 0.7, 1), ("item", "3", "precise measuring", 0.8, 1)])
    save_random_checkpoint(sid_map, paths.sft_ckpt, ScratchConfig(hidden=64, layers=2, heads=2, intermediate=128))
    return run_dir


@dataclass
class Server:
    """A running server: its address, run folder, engine and the headers that carry its API key."""

    url: str
    run_dir: Path
    engine: str
    headers: dict[str, str]
    api_key: str = API_KEY
    n_items: int = N_ITEMS


@pytest.fixture(scope="session")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("serve") / "run")


@pytest.fixture(scope="module", params=["hf", pytest.param("vllm", marks=[pytest.mark.vllm, pytest.mark.slow])])
def server(request: pytest.FixtureRequest, served_run: Path) -> Iterator[Server]:
    """`genrec serve` on 127.0.0.1 (API key required), one per engine; stopped after the module."""
    engine = request.param
    if engine == "vllm":
        pytest.importorskip("vllm")
    port = free_port()
    env = {**os.environ, "GENREC_API_KEY": API_KEY, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "genrec.cli", "serve", "--set", f"run_dir={served_run}",
           "--set", f"serve.engine={engine}", "--set", f"serve.port={port}", "--set", "serve.num_beams=12",
           "--set", "serve.enforce_eager=true", "--set", "serve.max_history=30"]
    url = f"http://127.0.0.1:{port}"
    log = served_run.parent / f"server-{engine}.log"
    with local_server(cmd, env, f"{url}/healthz", log, timeout_s=240):
        yield Server(url=url, run_dir=served_run, engine=engine, headers={"X-API-Key": API_KEY})
