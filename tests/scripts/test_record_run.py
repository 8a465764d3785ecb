"""`scripts/record_run.py` on a tiny finished run folder: the run's SFT and GRPO land in the results files the
reproduction report reads, scored on the run's own test targets, and an unfinished run is refused by name."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from genrec.artifacts import Manifest, write_json
from test_report_scripts import load_script

USERS = [f"u{i}" for i in range(4)]


def _recs(path: Path, first: dict[str, str]) -> None:
    """20 items per user; `first[user]` (when given) at rank 1, the rest filler."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for user in USERS:
            items = ([first[user]] if user in first else []) + [f"x{j}" for j in range(20)]
            fh.write(json.dumps({"user": user, "items": items[:20]}) + "\n")


def _manifest(run: Path, stage: str, **fields) -> None:
    write_json(run / stage / "manifest.json",
               Manifest(stage=stage, config={"lr": 1.0}, config_hash="x", **fields).model_dump(mode="json"))


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "toy"
    (run / "data").mkdir(parents=True)
    pd.DataFrame({"user_id": USERS, "split": "test", "history": [["h"]] * 4,
                  "target": [f"t{i}" for i in range(4)]}).to_parquet(run / "data" / "sequences.parquet")
    _recs(run / "eval" / "sft" / "recs.jsonl", {"u0": "t0"})                 # 1 hit of 4 at rank 1
    _recs(run / "eval" / "grpo" / "recs.jsonl", {"u0": "t0", "u1": "t1"})     # 2 hits of 4
    _recs(run / "eval" / "sasrec" / "recs.jsonl", {})
    _manifest(run, "sft", counts={"steps": 10, "train_examples": 40, "parameters": 7},
              metrics={"train_wall_s": 5.0, "best_metric": 0.3, "valid_curve": [], "model_kind": "scratch"})
    _manifest(run, "grpo", wall_s=9.0, counts={"steps": 3},
              metrics={"reward_terms": ["exact_hit", "interest_reward"], "reward_weights": [1.0, 0.5],
                       "valid_curve": {"0": {"ndcg@10": 0.1}}, "valid_ndcg10_best": 0.2, "valid_ndcg10_sft": 0.1,
                       "rollouts_per_s": 2.0})
    _manifest(run, "eval")
    return run


def test_run_rows_are_recorded_for_the_report(finished_run: Path, tmp_path: Path, monkeypatch) -> None:
    record = load_script("record_run")
    monkeypatch.setattr(record, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--run", str(finished_run), "--dataset", "toy", "--name", "cfg"])
    record.main()
    sft = json.loads((tmp_path / "results" / "sft_toy.json").read_text())["variants"]["scratch:cfg"]
    assert sft["metrics"]["hr@5"] == pytest.approx(0.25) and sft["metrics"]["ndcg@10"] == pytest.approx(0.25)
    assert sft["reference_same_users"]["sasrec"]["paired_ndcg@10"]["ndcg@10_diff"] == pytest.approx(0.25)
    grpo = json.loads((tmp_path / "results" / "grpo_toy_cfg.json").read_text())
    assert set(grpo["metrics"]) == {"sft", "grpo_interest"}  # the run's reward had an interest term
    assert grpo["metrics"]["grpo_interest"]["hr@10"] == pytest.approx(0.5)
    assert grpo["paired_vs_sft"]["grpo_interest"]["users_changed"] == 1


def test_unfinished_run_is_named(finished_run: Path, monkeypatch) -> None:
    (finished_run / "grpo" / "manifest.json").unlink()
    record = load_script("record_run")
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--run", str(finished_run), "--dataset", "toy", "--name", "cfg"])
    with pytest.raises(SystemExit, match="grpo: no manifest"):
        record.main()
