"""`scripts/bench_insample.py`: probes an SFT checkpoint on GRPO's training sample and on its validation sample."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from genrec.artifacts import RunPaths
from genrec.data import DataConfig, load_sequences
from genrec.data import run as run_data
from genrec.model import ModelConfig, ScratchConfig, build_model, save_checkpoint, sid_vocabulary
from genrec.train.grpo import GRPOStageConfig
from test_report_scripts import load_script


def test_probes_both_samples_with_the_asked_sizes(tiny_lcrec: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_data(DataConfig(name="tiny", path=tiny_lcrec), run_dir)
    paths = RunPaths(run_dir)
    items = sorted(set(load_sequences(run_dir)["target"].astype(str)))
    sids = {item: f"<a_{i % 2}><b_{i % 3}><c_{i}>" for i, item in enumerate(items)}
    paths.sid_map.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": list(sids), "codes": [[i % 2, i % 3, i] for i in range(len(sids))],
                  "sid": list(sids.values())}).to_parquet(paths.sid_map)
    torch.manual_seed(0)
    model, tokenizer, info = build_model(ModelConfig(scratch=ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32)),
                                         sid_vocabulary(sids.values()), sid_levels=3)
    save_checkpoint(model, tokenizer, info, paths.sft_ckpt)

    bench = load_script("bench_insample")
    metrics = bench.split_metrics(run_dir, rows=3, grpo=GRPOStageConfig(valid_users=2, num_beams=10, threads=1))
    assert metrics["train"]["rows"] == 3 and metrics["valid"]["rows"] == 2  # the validation sample caps the probe
    for split in ("train", "valid"):
        assert 0.0 <= metrics[split]["ndcg@10"] <= metrics[split]["hr@10"] <= 1.0
        assert metrics[split]["hr@5"] <= metrics[split]["hr@10"]
