"""`scripts/bench_repro.py` and `scripts/plot_report.py` on a tiny synthetic results folder and run folder:
the ablation ladder picks the right rows, wall time per stage comes from the manifests, the BENCHMARKS block
is replaced between its markers only, and every plot is written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from genrec.artifacts import Manifest, write_json

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
USERS = 100


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(module)
    return module


def m(ndcg10: float) -> dict[str, float]:
    return {"hr@5": ndcg10 * 2, "hr@10": ndcg10 * 3, "ndcg@5": ndcg10 * 0.9, "ndcg@10": ndcg10}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """One file of every shape the benchmarks write, for dataset `toy`."""
    folder = tmp_path / "results"
    write_json(folder / "baseline_mostpop_toy.json", {"metrics": m(0.01), "users": USERS, "wall_s": 1.0})
    write_json(folder / "baseline_sasrec_toy.json", {"metrics": m(0.05), "users": USERS, "wall_s": 60.0,
                                                     "summary": {"history": [{"epoch": 2, "valid_ndcg@10": 0.02},
                                                                             {"epoch": 4, "valid_ndcg@10": 0.03}]}})
    curve = [{"step": 10, "loss": 3.0, "ndcg@10": 0.01}, {"step": 20, "loss": 2.5, "ndcg@10": 0.03}]
    write_json(folder / "sft_toy.json", {"variants": {
        "scratch:text": {"metrics": m(0.03), "test_users": USERS, "total_wall_s": 100.0, "valid_curve": curve},
        "scratch:textbig": {"metrics": m(0.09), "test_users": 10, "valid_curve": curve},  # better, but a sample
        # better on test but worse on validation: validation picks the rung's row, never the test metrics
        "scratch:textlong": {"metrics": m(0.035), "test_users": USERS, "best_valid_ndcg@10": 0.02},
        "scratch:interest": {"metrics": m(0.04), "test_users": USERS, "valid_curve": curve},
        "scratch:collab_w05": {"metrics": m(0.045), "test_users": USERS, "best_valid_ndcg@10": 0.05}}})
    write_json(folder / "grpo_toy.json", {
        "metrics": {"sft": m(0.03) | {"users": USERS}, "grpo_rules": m(0.035) | {"users": USERS}},
        "wall_s": {"grpo_rules_train": 50.0, "grpo_rules_test": 5.0},
        "training": {"grpo_rules": {"reward_curves": {"step": [1, 2], "exact_hit": [0.0, 0.1], "kl": [0.0, 0.01],
                                                      "interest_reward": [None, 0.5]}}}})
    # a benchmark's extra file (`<kind>_<dataset>_<tag>.json`, the tag naming the dataset again, as record_run's
    # names do): GRPO from another start, better on validation
    write_json(folder / "grpo_toy_fromcollab_toy_yaml.json", {
        "metrics": {"sft": m(0.04) | {"users": USERS}, "grpo_rules_lr2e-5": m(0.041) | {"users": USERS}},
        "training": {"grpo_rules_lr2e-5": {"valid_curve": {"50": {"ndcg@10": 0.06}}}}})
    write_json(folder / "interest_decoding_toy.json", {"hf": {"beam": m(0.02) | {"users": USERS},
                                                              "interest_codes_m4_score": m(0.025) | {"users": USERS},
                                                              "interest_codes_m8_interleave": m(0.03) | {"users": USERS}},
                                                       "speed": {"beam": {"hf": {"users_per_s": 3.0}}},
                                                       "coverage_merge": {"hf": {  # another checkpoint's section
                                                           "beam": m(0.022) | {"users": USERS},
                                                           "interest_codes_m8_coverage_p0.05": m(0.022) | {"users": USERS}}}})
    # a tuning run on validation users: its rows are never test rows
    write_json(folder / "coverage_penalty_toy.json", {"split": "valid", "rows": {"plain_beam": m(0.3)}})
    write_json(folder / "multi_interest_toy.json", {"variants": {"gemirec": {"metrics": m(0.04),  # users not stated
                                                                                    "metrics_selected_merge": m(0.045)}},
                                                        "references": {"sasrec": {"metrics": m(0.05)}}})
    write_json(folder / "repro_toy.json", {"metrics": m(0.5)})  # its own output is never read back
    write_json(folder / "baseline_sasrec_other.json", {"metrics": m(0.9), "users": 5})  # another dataset
    return folder


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder with stage manifests (wall times), an eval manifest and a SID map."""
    folder = tmp_path / "runs" / "toyrun"
    for stage, wall in (("data", 1.0), ("sft", 30.5), ("recommend", 4.0)):
        write_json(folder / stage / "manifest.json",
                   Manifest(stage=stage, config={}, config_hash="x", wall_s=wall).model_dump(mode="json"))
    # mining answered from its cache: 3 s of wall time, 500 s of LLM time behind the answers
    write_json(folder / "mine" / "manifest.json", Manifest(stage="mine", config={}, config_hash="x", wall_s=3.0,
                                                           metrics={"llm_seconds": 500.0}).model_dump(mode="json"))
    write_json(folder / "eval" / "manifest.json", Manifest(stage="eval", config={}, config_hash="x", wall_s=0.5,
                                                           metrics={"grpo": m(0.02) | {"users": USERS}}).model_dump())
    (folder / "sid").mkdir()
    pd.DataFrame({"item_id": ["0", "1", "2", "3"], "codes": [[0, 0], [1, 0], [2, 0], [3, 0]],
                  "sid": ["<a_0><b_0>", "<a_1><b_0>", "<a_2><b_0>", "<a_3><b_0>"]}).to_parquet(folder / "sid" / "sid_map.parquet")
    return folder


def test_report_ladder_walls_and_published(results: Path, run: Path) -> None:
    repro = load_script("bench_repro")
    report = repro.build_report("toy", results, [run], "python scripts/bench_repro.py --dataset toy")
    steps = {s["step"]: s for s in report["ablation"]}
    assert report["test_users"] == USERS
    assert steps["MostPop"]["row"] == "baseline_mostpop"
    # the text-only variant with the best validation NDCG@10 among those scored on every test user wins over a
    # better test score (scratch:textlong) and over a better score on a 10-user sample
    text = steps["text-only SIDs + SFT (TIGER / LC-Rec setting)"]
    assert (text["row"], text["chosen_by"]) == ("sft:scratch:text", "best validation NDCG@10")
    assert steps["+ interest-enriched SIDs"]["row"] == "sft:scratch:interest"
    assert steps["+ collaborative SIDs (SASRec item table appended, as LETTER)"]["row"] == "sft:scratch:collab_w05"
    # the GRPO run in its own file recorded a validation score, the one in grpo_toy.json none
    assert steps["+ GRPO (rule rewards)"]["row"] == "grpo_fromcollab_toy_yaml:grpo_rules_lr2e-5"
    assert steps["+ GRPO (rule rewards)"]["start"] == {"row": "grpo_fromcollab_toy_yaml:sft", "ndcg@10": 0.04}
    assert steps["MostPop"]["start"] is None
    multi = steps["multi-interest retrieval (GemiRec / ULIM / DMI)"]
    assert multi["row"] == "multi_interest:gemirec" and not multi["sample"] and multi["users"] is None
    assert multi["metrics"]["ndcg@10"] == 0.045  # the merge rule chosen on validation
    assert steps["text-only SIDs + SFT (TIGER / LC-Rec setting)"]["sample"] is False
    decoding = steps["interest-conditioned decoding (a beam group per interest)"]
    # no validation score recorded: the config's default setting (coverage merge, penalty 0.05) stands for the rung
    assert decoding["row"] == "interest_decoding:coverage_merge:interest_codes_m8_coverage_p0.05"
    assert decoding["chosen_by"] == "the config's default setting"
    assert decoding["start"] == {"row": "interest_decoding:coverage_merge:beam", "ndcg@10": 0.022}
    assert "interest_decoding:hf:interest_codes_m4_score" in report["metrics"]
    assert not any(rid.startswith("coverage_penalty") for rid in report["metrics"])
    assert not any(rid.startswith("interest_decoding:speed") for rid in report["metrics"])
    assert steps["+ interest-aware reward"]["row"] is None
    assert "toyrun/grpo" in report["metrics"] and "repro" not in report["metrics"]
    assert all(not rid.startswith("baseline_sasrec_other") for rid in report["metrics"])
    assert report["benchmark_wall_s"]["grpo:grpo_rules"] == 55.0
    walls = next(iter(report["wall_s"].values()))
    assert walls == {"data": 1.0, "mine": 500.0, "sft": 30.5, "recommend": 4.0, "eval": 0.5, "total": 536.0}
    assert report["published"] == []  # no published numbers for a dataset nobody published on
    assert {p["dataset"] for p in repro.PUBLISHED} == {"beauty", "scientific"}
    assert all(p["source"] and p["same_split"] for p in repro.PUBLISHED)


def test_update_benchmarks_replaces_only_its_block(results: Path, run: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repro = load_script("bench_repro")
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\nintro\n<!-- repro:toy start -->\nold table\n<!-- repro:toy end -->\n## Other\nkept\n")
    out = tmp_path / "repro.json"
    monkeypatch.setattr(sys, "argv", ["bench_repro.py", "--dataset", "toy", "--results", str(results), "--run", str(run),
                                      "--out", str(out), "--update-benchmarks", str(bench)])
    repro.main()
    text = bench.read_text()
    assert "old table" not in text and text.startswith("# Benchmarks\nintro\n") and text.endswith("## Other\nkept\n")
    assert "| MostPop | 0.0200 | 0.0300 | 0.0090 | 0.0100 | `baseline_mostpop`, chosen by only candidate | 100 |" in text
    assert "| + interest-aware reward | – | – | – | – | not measured |  |" in text
    assert json.loads(out.read_text())["dataset"] == "toy"

    bench.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="repro:toy start"):
        repro.main()


def test_plots_are_written_and_code_usage_is_right(results: Path, run: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plots = load_script("plot_report")
    used, perplexity = plots.code_usage(run / "sid" / "sid_map.parquet", codebook_size=4)
    assert used == [1.0, 0.25] and perplexity == pytest.approx([1.0, 0.25])  # uniform level a, one code at level b
    out = tmp_path / "plots"
    monkeypatch.setattr(sys, "argv", ["plot_report.py", "--results", str(results), "--run", str(run), "--out", str(out),
                                      "--codebook-size", "4"])
    plots.main()
    names = {p.name for p in out.glob("*.png")}
    assert names == {"sasrec_valid_ndcg.png", "sft_valid.png", "grpo_rewards.png", "codebook_utilisation.png"}
    assert all(0 < p.stat().st_size < 300_000 for p in out.glob("*.png"))
