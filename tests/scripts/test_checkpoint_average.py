"""`scripts/bench_checkpoint_average.py`: averages a run's k best kept checkpoints and scores each k on the
validation and test splits; k equal to the run's `sft.average_top` reproduces the checkpoint the stage saved."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from genrec.artifacts import RunPaths
from test_report_scripts import load_script
from tiny_runs import RING_USERS, write_ring_run


def test_each_k_is_scored_and_k3_is_the_saved_average(tmp_path: Path, monkeypatch) -> None:
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend
    from genrec.eval import evaluate_file
    from genrec.train.sft import SFTConfig
    from genrec.train.sft import run as sft

    run_dir = write_ring_run(tmp_path / "ring")
    config = SFTConfig(model={"scratch": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32}}, max_steps=12,
                       eval_every=2, lr=5e-3, batch_size=16, valid_users=RING_USERS, num_beams=20, threads=1,
                       average_top=3, group_by_length=False)
    manifest = sft(config, run_dir)
    bench = load_script("bench_checkpoint_average")
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["bench_checkpoint_average.py", "--dataset", "ring", "--run", str(run_dir),
                                      "--top", "1", "3", "--beams", "20", "--threads", "1"])
    bench.main()
    tops = json.loads((tmp_path / "results" / "checkpoint_average_ring.json").read_text())["runs"][str(run_dir)]["top"]
    assert tops["3"]["checkpoints"] == manifest.metrics["averaged_checkpoints"]
    assert tops["1"]["checkpoints"] == manifest.metrics["averaged_checkpoints"][:1]
    assert tops["1"]["valid"]["metrics"]["ndcg@10"] == pytest.approx(manifest.metrics["best_metric"])
    assert {split: tops["3"][split]["users"] for split in ("valid", "test")} == {"valid": RING_USERS, "test": RING_USERS}
    recommend(RecommendConfig(num_beams=20, k=10, system="sft", batch_size=8, threads=1), run_dir)
    saved = evaluate_file(RunPaths(run_dir).recs("sft"), run_dir)
    assert tops["3"]["test"]["metrics"]["ndcg@10"] == pytest.approx(saved["ndcg@10"])

    monkeypatch.setattr(sys, "argv", ["bench_checkpoint_average.py", "--dataset", "ring", "--run", str(run_dir),
                                      "--top", "9"])
    kept = len(list((RunPaths(run_dir).stage_dir("sft") / "trainer").glob("checkpoint-*")))  # best 3 (+ the newest)
    with pytest.raises(SystemExit, match=f"{kept} checkpoints kept"):
        bench.main()
