"""Helpers for the sid tests. A synthetic run folder for the sid tests: 64 items in 8 topical clusters, users who buy within a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from genrec.artifacts import RunPaths
from genrec.data import DataConfig
from genrec.data import run as prepare_data

N_ITEMS, N_CLUSTERS, DIM = 64, 8, 16


def write_embeddings(path: Path, item_ids: list[str], matrix: np.ndarray, **tensors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"fused": matrix, "text": matrix, **tensors}, str(path), metadata={"item_ids": json.dumps(item_ids)})


@pytest.fixture
def sid_run(tmp_path: Path) -> Path:
    """Run folder with data prepared and `embed/item_emb.safetensors` of clustered vectors."""
    rng = np.random.default_rng(0)
    cluster = np.arange(N_ITEMS) % N_CLUSTERS
    sequences = {str(u): [int(i) for i in rng.choice(np.flatnonzero(cluster == u % N_CLUSTERS), 5, replace=False)]
                 for u in range(40)}
    folder = tmp_path / "synthetic"
    folder.mkdir()
    (folder / "Syn.inter.json").write_text(json.dumps(sequences))
    (folder / "Syn.item.json").write_text(json.dumps({str(i): {"title": f"item {i}"} for i in range(N_ITEMS)}))
    run_dir = tmp_path / "run"
    prepare_data(DataConfig(name="syn", path=folder, format="lcrec"), run_dir)
    centres = rng.standard_normal((N_CLUSTERS, DIM)) * 3
    matrix = (centres[cluster] + 0.3 * rng.standard_normal((N_ITEMS, DIM))).astype(np.float32)
    write_embeddings(RunPaths(run_dir).item_emb, [str(i) for i in range(N_ITEMS)], matrix)
    return run_dir
