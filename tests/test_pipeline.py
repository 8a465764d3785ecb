"""`genrec run`: stages run in order and are skipped when fresh; changes re-run what depends on them."""

import shutil
from pathlib import Path

from genrec.artifacts import read_manifest
from genrec.pipeline import load_run_config, reuse_or_run, run_pipeline


def _config(tiny_lcrec: Path, run_dir: Path, k: int = 10, history: int = 20):
    return load_run_config(None, [
        f"run_dir={run_dir}", f"data.path={tiny_lcrec}", "data.name=tiny", f"data.max_history={history}",
        "baselines.systems=[mostpop]", f"baselines.k={k}", "eval.systems=[mostpop]",
    ])


def test_rerun_skips_fresh_stages_and_reruns_changed_ones(tiny_lcrec: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    record = lambda name, status: seen.append((name, status))  # noqa: E731
    results = run_pipeline(_config(tiny_lcrec, tmp_path), on_stage=record)
    assert [n for n, s in seen if s == "run"] == ["data", "baselines", "eval"]
    assert results["eval"].metrics["mostpop"]["users"] == 6

    seen.clear()
    run_pipeline(_config(tiny_lcrec, tmp_path), on_stage=record)
    assert [n for n, s in seen if s == "run"] == []

    # A config change re-runs that stage; its unchanged output (8 items exist, so k=12 gives the same
    # list) leaves the downstream eval fresh, because freshness is decided by input content.
    seen.clear()
    run_pipeline(_config(tiny_lcrec, tmp_path, k=12), on_stage=record)
    assert [n for n, s in seen if s == "run"] == ["baselines"]

    # A data change cascades to every stage that reads the changed files.
    seen.clear()
    run_pipeline(_config(tiny_lcrec, tmp_path, k=12, history=2), on_stage=record)
    assert [n for n, s in seen if s == "run"] == ["data", "baselines", "eval"]


def test_killed_stage_reruns(tiny_lcrec: Path, tmp_path: Path) -> None:
    run_pipeline(_config(tiny_lcrec, tmp_path))
    (tmp_path / "baselines" / "manifest.json").unlink()  # as if killed before finishing
    seen: list[tuple[str, str]] = []
    run_pipeline(_config(tiny_lcrec, tmp_path), on_stage=lambda n, s: seen.append((n, s)))
    assert [n for n, s in seen if s == "run"] == ["baselines"]


def test_copied_run_folder_stays_fresh(tiny_lcrec: Path, tmp_path: Path) -> None:
    """Copying a run folder (to branch an experiment off it) keeps its stages fresh there, and what is checked
    is the copy's files, not the original's."""
    run_pipeline(_config(tiny_lcrec, tmp_path / "a"))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    seen: list[tuple[str, str]] = []
    run_pipeline(_config(tiny_lcrec, tmp_path / "b"), on_stage=lambda n, s: seen.append((n, s)))
    assert [n for n, s in seen if s == "run"] == []

    (tmp_path / "b" / "eval" / "mostpop" / "recs.jsonl").unlink()
    seen.clear()
    run_pipeline(_config(tiny_lcrec, tmp_path / "b"), on_stage=lambda n, s: seen.append((n, s)))
    assert [n for n, s in seen if s == "run"] == ["baselines"]  # rewrites the same recs, so eval stays fresh


def test_reuse_or_run_reads_back_a_fresh_stage(tiny_lcrec: Path, tmp_path: Path) -> None:
    """What the benchmark scripts use to re-score a trained stage without retraining it."""
    config = _config(tiny_lcrec, tmp_path)
    run_pipeline(config)
    manifest, ran = reuse_or_run("baselines", config.baselines, tmp_path)
    assert not ran and manifest.counts == read_manifest(tmp_path / "baselines").counts
    changed = config.baselines.model_copy(update={"k": 12})
    manifest, ran = reuse_or_run("baselines", changed, tmp_path)
    assert ran and manifest.config["k"] == 12
    _, ran = reuse_or_run("baselines", changed, tmp_path, force=True)
    assert ran
