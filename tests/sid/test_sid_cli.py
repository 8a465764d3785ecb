"""`genrec sid` through the CLI: a summary on success, a named file and exit code 1 on a corrupt input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from genrec.artifacts import RunPaths, fresh_manifest
from genrec.cli import app
from genrec.pipeline import load_run_config
from genrec.sid import inputs

SETS = ["--set", "sid.quantizer=rqkmeans", "--set", "sid.levels=2", "--set", "sid.codebook_size=8"]


def test_cli_writes_sid_map_and_is_fresh_after(sid_run: Path) -> None:
    result = CliRunner().invoke(app, ["sid", "--set", f"run_dir={sid_run}", *SETS])
    assert result.exit_code == 0, result.output
    assert "collision rate" in result.output
    assert pd.read_parquet(RunPaths(sid_run).sid_map)["sid"].is_unique
    cfg = load_run_config(None, [f"run_dir={sid_run}", *SETS[1::2]])
    assert fresh_manifest(RunPaths(sid_run).stage_dir("sid"), cfg.sid, inputs(cfg.sid, sid_run)) is not None


def test_cli_names_a_corrupt_embedding_file(sid_run: Path) -> None:
    RunPaths(sid_run).item_emb.write_bytes(b"\x00" * 32)
    result = CliRunner().invoke(app, ["sid", "--set", f"run_dir={sid_run}", *SETS])
    assert result.exit_code == 1
    assert "item_emb.safetensors" in result.output.replace("\n", "")
