"""`scripts/tune_coverage_penalty.py` on a tiny run: validation users only, one row per penalty merged from one
decode, the chosen penalty follows the stated rule, and a large penalty widens the lists."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from test_report_scripts import load_script
from tiny_runs import build_category_run

from genrec.artifacts import RunPaths


def test_penalties_are_tuned_on_validation(tmp_path: Path, monkeypatch) -> None:
    run_dir = build_category_run(tmp_path, users=12, data_seed=5, model_seed=2)
    paths = RunPaths(run_dir)
    paths.item_emb.parent.mkdir(parents=True, exist_ok=True)
    save_file({"text": np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)}, str(paths.item_emb),
              metadata={"item_ids": json.dumps([str(i) for i in range(40)])})
    out = tmp_path / "tuned.json"
    script = load_script("tune_coverage_penalty")
    monkeypatch.setattr(sys, "argv", ["tune", "--dataset", "tiny", "--run", str(run_dir), "--users", "10", "--m", "3",
                                      "--grid", "0,0.5,1000", "--threads", "1", "--out", str(out)])
    script.main()
    result = json.loads(out.read_text())
    assert result["split"] == "valid" and result["users"] == 10
    rows = result["rows"]
    assert list(rows) == ["plain_beam", "coverage_0", "plain_reranked_0", "coverage_0.5", "plain_reranked_0.5",
                          "coverage_1000", "plain_reranked_1000"]
    assert {k: v for k, v in rows["plain_reranked_0"].items() if k != "coverage_penalty"} == {
        **rows["plain_beam"], "paired_ndcg@10_vs_beam": rows["plain_reranked_0"]["paired_ndcg@10_vs_beam"]}
    assert rows["plain_reranked_0"]["paired_ndcg@10_vs_beam"]["users_changed"] == 0
    kept = [r["coverage_penalty"] for name, r in rows.items()
            if name.startswith("coverage_") and r["paired_ndcg@10_vs_beam"]["ndcg@10_diff"] >= 0]
    assert result["chosen_penalty"] == (max(kept) if kept else None)
    # one item of every code in the pool before any repeats: at least the plain beam's codes in the top 10
    assert rows["coverage_1000"]["sid_code_coverage@10"] > rows["plain_beam"]["sid_code_coverage@10"]
