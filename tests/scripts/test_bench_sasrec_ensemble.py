"""`scripts/bench_sasrec_ensemble.py`: trains the extra seeds beside the run's SASRec, ranks by their mean
log-prob and reports members, ensemble and paired differences; the run's own seed is refused as an extra one.
With `--students` it also distils the members into single SASRecs and reports those."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from genrec.artifacts import RunPaths
from genrec.baselines.config import SASRecConfig
from genrec.baselines.sasrec import fit_and_recommend
from genrec.baselines.stage import sasrec_model_path
from genrec.data.split import leave_one_out
from genrec.eval.recs import read_recs, write_recs
from test_report_scripts import load_script

SASREC = SASRecConfig(hidden=16, layers=1, heads=1, dropout=0.1, epochs=4, patience=4, eval_every=2, seed=3, threads=1)


def cycle_run(run_dir: Path, n_items: int = 30, users: int = 40) -> None:
    """A run folder whose users walk the item cycle, with its SASRec baseline (seed 3, 12-item lists)."""
    paths = RunPaths(run_dir)
    paths.items.parent.mkdir(parents=True)
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(n_items)]})
    sequences = leave_one_out({f"u{u}": [f"i{(u + t) % n_items}" for t in range(6)] for u in range(users)},
                              max_history=20)
    items.to_parquet(paths.items)
    sequences.to_parquet(paths.sequences)
    result = fit_and_recommend(SASREC, items, sequences, 12, sasrec_model_path(run_dir).parent)
    write_recs(paths.recs("sasrec"), result.recs.items())


def test_ensembles_the_run_sasrec_with_extra_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    cycle_run(run_dir)
    bench = load_script("bench_sasrec_ensemble")
    results = tmp_path / "result.json"
    argv = ["bench", "--dataset", "tiny", "--run", str(run_dir), "--root", str(tmp_path / "seeds"),
            "--compare", f"again={RunPaths(run_dir).recs('sasrec')}", "--results", str(results)]

    monkeypatch.setattr(sys, "argv", [*argv, "--seeds", "3"])
    with pytest.raises(SystemExit, match="seed 3 is the run's own SASRec"):
        bench.main()

    monkeypatch.setattr(sys, "argv", [*argv, "--seeds", "4", "5"])
    bench.main()
    result = json.loads(results.read_text())
    assert list(result["metrics"]) == ["sasrec_s3", "sasrec_s4", "sasrec_s5", "again", "sasrec_ensemble"]
    assert result["sasrec_config"]["hidden"] == 16 and set(result["train_wall_s"]) == {"sasrec_s4", "sasrec_s5"}
    assert result["ensemble_vs"]["again"] == result["ensemble_vs"]["sasrec_s3"]
    ensemble = read_recs(tmp_path / "seeds" / "ensemble" / "recs.jsonl")
    assert set(ensemble) == set(read_recs(RunPaths(run_dir).recs("sasrec")))
    assert all(len(items) == 12 == len(set(items)) for items in ensemble.values())
    assert "students_vs" not in result

    monkeypatch.setattr(sys, "argv", [*argv, "--seeds", "4", "5", "--students", "4"])
    with pytest.raises(SystemExit, match="--students seeds must differ"):
        bench.main()
    monkeypatch.setattr(sys, "argv", [*argv, "--seeds", "4", "5", "--students", "6", "--distill-weight", "0.7"])
    bench.main()  # members resume from their checkpoints; the student trains towards them
    distilled = json.loads(results.read_text())
    assert distilled["metrics"] == result["metrics"]
    assert distilled["distill"]["weight"] == 0.7 and len(distilled["distill"]["teachers"]) == 3
    assert list(distilled["student_metrics"]) == ["sasrec_student_s6"]
    assert set(distilled["students_vs"]["sasrec_student_s6"]) == set(distilled["metrics"])
    assert set(distilled["train_wall_s"]) == {"sasrec_s4", "sasrec_s5", "sasrec_student_s6"}
    assert (tmp_path / "seeds" / "student6" / "model.pt").is_file()
