"""`genrec run` ends with the metrics of every scored checkpoint and sample recommendations explained by
the users' curated interests; `recommend.also` scores more checkpoints (e.g. SFT beside GRPO) in one stage."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tiny_runs import save_random_checkpoint, write_labelled_interests, write_sid_map
from typer.testing import CliRunner

from genrec.artifacts import RunPaths
from genrec.cli import app
from genrec.config import ConfigError
from genrec.decode import RecommendConfig
from genrec.decode import inputs as recommend_inputs
from genrec.model import ScratchConfig
from genrec.pipeline import load_run_config
from genrec.report import sample_recommendations

N_ITEMS, N_USERS = 30, 10
SCRATCH = ScratchConfig(hidden=32, layers=1, heads=2, intermediate=64)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset folder, run folder holding a SID map, labelled interests, an SFT and a GRPO checkpoint)."""
    root = tmp_path_factory.mktemp("report")
    folder = root / "dataset"
    folder.mkdir()
    sequences = {str(u): [(u * 7 + 3 * j) % N_ITEMS for j in range(4 + u % 3)] for u in range(N_USERS)}
    (folder / "Tiny.inter.json").write_text(json.dumps(sequences))
    meta = {str(i): {"title": f"item {i}", "description": "", "brand": "b", "categories": "c"} for i in range(N_ITEMS)}
    (folder / "Tiny.item.json").write_text(json.dumps(meta))
    paths = RunPaths(root / "run")
    sid_map = write_sid_map(paths, [(i % 5, (i // 5) % 3, i // 15) for i in range(N_ITEMS)])
    write_labelled_interests(paths, [("user", "3", "field chemistry", 0.9, 1), ("user", "3", "rejected interest", 0.2, 0),
                                     ("user", "3", "lab safety", 0.7, 1)]
                             + [("item", str(i), f"use of item {i}", 0.8, 1) for i in range(N_ITEMS)])
    # different seeds rank differently
    save_random_checkpoint(sid_map, paths.sft_ckpt, SCRATCH, seed=0, std=0.5)
    save_random_checkpoint(sid_map, paths.grpo_ckpt, SCRATCH, seed=1, std=0.5)
    return folder, paths.root


def test_run_scores_grpo_and_sft_and_prints_explained_samples(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, run_dir = built
    config = {"run_dir": str(run_dir), "data": {"name": "tiny", "path": str(folder)},
              "recommend": {"checkpoint": "grpo", "system": "grpo", "also": [{"checkpoint": "sft", "system": "sft"}],
                            "num_beams": 20, "k": 10, "threads": 1},
              "eval": {"systems": ["grpo", "sft"]}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "run.yaml")], terminal_width=200)
    assert result.exit_code == 0, result.output

    paths = RunPaths(run_dir)
    recs = {name: [json.loads(line)["items"] for line in paths.recs(name).read_text().splitlines()]
            for name in ("grpo", "sft")}
    assert all(len(lists) == N_USERS and all(len(set(items)) == 10 for items in lists) for lists in recs.values())
    assert recs["grpo"] != recs["sft"]  # two different models were decoded, not one written twice
    manifest = json.loads((paths.stage_dir("recommend") / "manifest.json").read_text())
    assert list(manifest["metrics"]["systems"]) == ["grpo", "sft"]
    assert manifest["metrics"]["checkpoint"] == str(paths.grpo_ckpt)  # top level = the main system
    assert manifest["outputs"] == [str(paths.recs("grpo")), str(paths.recs("sft"))]

    output = " ".join(result.output.split())
    assert "grpo" in output and "sft" in output and "ndcg@10" in output
    # user 3 has curated interests, so they come first, the rejected one is not shown
    assert "grpo for user 3" in output and "field chemistry (0.90); lab safety (0.70)" in output
    assert "rejected interest" not in output and "<a_" in output and "use of item" in output


def test_samples_prefer_users_with_interests_then_hits(built: tuple[Path, Path]) -> None:
    _, run_dir = built
    paths = RunPaths(run_dir)
    test = pd.read_parquet(paths.sequences).query("split == 'test'")
    targets = dict(zip(test["user_id"].astype(str), test["target"].astype(str), strict=True))
    # user 5's target ranked first, every other user misses
    lines = [{"user": u, "items": ([t] if u == "5" else []) + [str(i) for i in range(N_ITEMS) if str(i) != t][:10]}
             for u, t in targets.items()]
    paths.recs("handmade").parent.mkdir(parents=True, exist_ok=True)
    paths.recs("handmade").write_text("".join(json.dumps(line) + "\n" for line in lines))
    samples = sample_recommendations(run_dir, "handmade", users=3, k=5)
    assert [s.user_id for s in samples[:2]] == ["3", "5"]
    assert [i.interest for i in samples[0].interests] == ["field chemistry", "lab safety"]
    assert samples[1].items[0].hit and samples[1].items[0].title == f"item {targets['5']}"
    assert samples[1].interests[0].interest.startswith("use of item")  # explained by its history's items


def test_recommend_also_config(built: tuple[Path, Path]) -> None:
    _, run_dir = built
    old = RecommendConfig(checkpoint="grpo", system="grpo")  # configs without `also` mean what they meant
    assert [(t.checkpoint, t.system) for t in old.targets()] == [("grpo", "grpo")]
    both = RecommendConfig(checkpoint="grpo", system="grpo", also=[{"checkpoint": "sft", "system": "sft"}])
    assert RunPaths(run_dir).sft_ckpt in recommend_inputs(both, run_dir)
    with pytest.raises(ConfigError, match="'grpo' is named twice"):
        load_run_config(None, ["recommend.system=grpo", "recommend.also=[{checkpoint: sft, system: grpo}]"])
    with pytest.raises(ConfigError, match="also"):
        load_run_config(None, ["recommend.also=[{checkpoint: sft}]"])
