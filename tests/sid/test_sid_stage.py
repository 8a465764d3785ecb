"""The sid stage end to end on synthetic embeddings: unique SIDs, schema, determinism, bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open

from genrec.artifacts import RunPaths
from genrec.sid import RQVAEConfig, SidConfig, run
from genrec.sid.io import EmbeddingFileError
from sid_fixtures import DIM, N_ITEMS, write_embeddings

FAST_RQVAE = RQVAEConfig(hidden=[32], latent_dim=8, epochs=20, batch_size=32, lr=3e-3)
SID_PATTERN = re.compile(r"^<a_\d+><b_\d+>(<c_\d+>)?(<d_\d+>)?$")


def config(**kw) -> SidConfig:
    return SidConfig(levels=2, codebook_size=8, threads=1, rqvae=FAST_RQVAE, **kw)


@pytest.mark.parametrize("quantizer", ["rqvae", "rqkmeans"])
def test_sids_are_unique_and_follow_the_schema(sid_run: Path, quantizer: str) -> None:
    manifest = run(config(quantizer=quantizer), sid_run)
    sid_map = pd.read_parquet(RunPaths(sid_run).sid_map)
    items = pd.read_parquet(RunPaths(sid_run).items)
    assert list(sid_map.columns) == ["item_id", "codes", "sid"]
    assert sorted(sid_map["item_id"]) == sorted(items["item_id"])
    assert sid_map["sid"].is_unique
    assert all(SID_PATTERN.match(s) for s in sid_map["sid"])
    assert all(isinstance(c, int) or np.issubdtype(type(c), np.integer) for codes in sid_map["codes"] for c in codes)
    assert {len(c) for c in sid_map["codes"]} == {manifest.counts["levels"]}
    assert manifest.metrics["collision_rate_after"] == 0
    assert len(manifest.metrics["utilization"]) == 2
    assert all(0 < u <= 1 for u in manifest.metrics["utilization"])
    assert all(1 <= p <= 8 for p in manifest.metrics["perplexity"])  # at most K = 8 codes in effective use
    assert manifest.metrics["recon_loss"] > 0
    # 8 clusters, 8 first-level codes, users buy within a cluster: the first code carries that signal
    assert manifest.metrics["co_consumption"]["ratio"] > 2


def test_rqvae_file_holds_the_model(sid_run: Path) -> None:
    run(config(), sid_run)
    with safe_open(str(RunPaths(sid_run).rqvae), framework="np") as fh:
        assert fh.metadata()["quantizer"] == "rqvae"
        assert fh.get_tensor("quantizer.codebooks.0").shape == (8, 8)
        assert fh.get_tensor("encoder.0.weight").shape == (32, DIM)


def test_same_seed_same_sids_other_seed_differs(sid_run: Path, tmp_path: Path) -> None:
    run(config(), sid_run)
    first = pd.read_parquet(RunPaths(sid_run).sid_map)
    run(config(), sid_run)
    assert first.equals(pd.read_parquet(RunPaths(sid_run).sid_map))
    run(config(seed=7), sid_run)
    assert not first.equals(pd.read_parquet(RunPaths(sid_run).sid_map))


def test_collisions_get_resolved_when_codes_are_scarce(sid_run: Path) -> None:
    # 64 items into 2 levels of 4 codes = 16 tuples: reassignment cannot fit them, the extra level must
    manifest = run(SidConfig(quantizer="rqkmeans", levels=2, codebook_size=4), sid_run)
    sid_map = pd.read_parquet(RunPaths(sid_run).sid_map)
    assert manifest.metrics["collision_rate_before"] > 0.5
    assert manifest.metrics["extra_level"] and manifest.counts["levels"] == 3
    assert sid_map["sid"].is_unique and sid_map["sid"].str.contains("<c_").all()


def test_corrupt_embedding_file_is_named(sid_run: Path) -> None:
    path = RunPaths(sid_run).item_emb
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(EmbeddingFileError, match=re.escape(str(path))):
        run(config(), sid_run)


def test_missing_tensor_is_named(sid_run: Path) -> None:
    with pytest.raises(EmbeddingFileError, match="no tensor 'interest'"):
        run(config(embedding="interest"), sid_run)


def test_embeddings_of_other_items_are_rejected(sid_run: Path) -> None:
    path = RunPaths(sid_run).item_emb
    write_embeddings(path, [f"x{i}" for i in range(N_ITEMS)], np.zeros((N_ITEMS, DIM), np.float32))
    with pytest.raises(EmbeddingFileError, match="does not match items.parquet"):
        run(config(), sid_run)


def test_row_count_mismatch_is_named(sid_run: Path) -> None:
    path = RunPaths(sid_run).item_emb
    write_embeddings(path, [str(i) for i in range(N_ITEMS)], np.zeros((N_ITEMS - 1, DIM), np.float32))
    with pytest.raises(EmbeddingFileError, match=r"shape \(63, 16\) but 64 item ids"):
        run(config(), sid_run)


def test_nan_embeddings_are_rejected(sid_run: Path) -> None:
    matrix = np.zeros((N_ITEMS, DIM), np.float32)
    matrix[3, 2] = np.nan
    write_embeddings(RunPaths(sid_run).item_emb, [str(i) for i in range(N_ITEMS)], matrix)
    with pytest.raises(EmbeddingFileError, match="NaN"):
        run(config(), sid_run)


def test_missing_embedding_file_points_at_embed(sid_run: Path) -> None:
    RunPaths(sid_run).item_emb.unlink()
    with pytest.raises(FileNotFoundError, match="item_emb.safetensors"):
        run(config(), sid_run)
    assert not (RunPaths(sid_run).stage_dir("sid") / "manifest.json").exists()
    assert json.dumps(config().model_dump(mode="json"))  # config stays serialisable for manifests
