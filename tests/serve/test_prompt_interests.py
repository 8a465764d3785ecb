"""The endpoint with prompt-conditioned interest decoding (`serve.interest_source: mined_prompt`) on a real
server: an `llm` checkpoint whose prompts carry the user's interests, one beam group per curated interest."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import API_KEY
from local_server import free_port, local_server
from tiny_runs import save_random_interest_llm, save_tiny_causal_lm, write_labelled_interests

from genrec.artifacts import RunPaths


def test_prompt_conditioned_interests_over_http(served_run: Path, tmp_path: Path) -> None:
    """User 0's two curated interests each condition the prompt of one group (no first-level code); the reply
    matches the offline search with the same interests; a user without curated interests gets the plain beam."""
    from genrec.decode.hf_beam import constrained_beam_search, interest_beam_search
    from genrec.decode.interest import HISTORY_ONLY
    from genrec.decode.interest_sources import interest_selector
    from genrec.decode.trie import SidTrie
    from genrec.model import build_prompt_ids

    run_dir = tmp_path / "run"
    shutil.copytree(served_run, run_dir)
    paths = RunPaths(run_dir)
    sid_map = pd.read_parquet(paths.sid_map)
    shutil.rmtree(paths.sft_ckpt)
    model, tokenizer, info = save_random_interest_llm(sid_map, paths.sft_ckpt, save_tiny_causal_lm(tmp_path / "lm"))
    write_labelled_interests(paths, [("user", "0", "camping", 0.9, 1), ("user", "0", "stove", 0.6, 1)])
    port = free_port()
    cmd = [sys.executable, "-m", "genrec.cli", "serve", "--set", f"run_dir={run_dir}", "--set", "serve.engine=hf",
           "--set", f"serve.port={port}", "--set", "serve.num_beams=12", "--set", "serve.decoding=interest",
           "--set", "serve.interest_order=score",
           "--set", "serve.interest_source=mined_prompt", "--set", "serve.num_interests=2"]
    env = {**os.environ, "GENREC_API_KEY": API_KEY, "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    with local_server(cmd, env, f"{url}/healthz", tmp_path / "server.log", timeout_s=240):
        replies = {user: httpx.post(f"{url}/v1/recommend", json={"user_id": user, "k": 8},
                                    headers={"X-API-Key": API_KEY}, timeout=60) for user in ("0", "1")}
    assert all(r.status_code == 200 for r in replies.values()), replies["0"].text

    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    sids = dict(zip(sid_map["item_id"].astype(str), sid_map["sid"], strict=True))
    items = pd.read_parquet(paths.items)
    titles = dict(zip(items["item_id"].astype(str), items["title"], strict=True))
    test = pd.read_parquet(paths.sequences).query("split == 'test'").set_index("user_id")
    # the server serves a known user from everything known about them: the test row's history and its target
    served = {u: [*map(str, test.loc[u, "history"]), str(test.loc[u, "target"])] for u in ("0", "1")}

    def prompt_for(history, interests=None):
        return build_prompt_ids(tokenizer, info, [sids[i] for i in history], interests=interests,
                                titles=[titles[i] for i in history])

    select_for, _ = interest_selector("mined_prompt", 2, 12, run_dir, sid_map, tokenizer, ["0"], 1, info=info,
                                      prompt_for=prompt_for)
    want = interest_beam_search(model, [prompt_for(served["0"])], trie, num_beams=12, k=8, batch_size=1,
                                select=select_for(["0"], [served["0"]], 8))[0]
    body = replies["0"].json()
    assert [(i["item_id"], i["interest"]) for i in body["items"]] == [(r.item, r.interest) for r in want]
    assert [i["score"] for i in body["items"]] == pytest.approx([r.score for r in want], abs=1e-4)
    assert {g["interest"] for g in body["groups"]} <= {"camping", "stove"} and all(g["code"] is None for g in body["groups"])
    plain = constrained_beam_search(model, [prompt_for(served["1"])], trie, num_beams=12, k=8, batch_size=1)[0]
    other = replies["1"].json()
    assert [(i["item_id"], i["interest"]) for i in other["items"]] == [(item, HISTORY_ONLY) for item, _ in plain]
