"""The sid stage: item embeddings -> quantiser -> unique semantic IDs (`sid_map.parquet`, `rqvae.safetensors`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from genrec.artifacts import Manifest, RunPaths, atomic_output, stage_run
from genrec.data import load_items, load_sequences, training_items
from genrec.sid.collisions import collision_rate, resolve
from genrec.sid.config import SidConfig
from genrec.sid.io import read_item_embeddings, sid_frame
from genrec.sid.metrics import co_consumption, perplexity, utilisation
from genrec.sid.quantized import Quantized


def inputs(config: SidConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    return [paths.item_emb, paths.items, paths.sequences]


def quantise(x: np.ndarray, config: SidConfig) -> Quantized:
    """Fit the configured quantiser on all item embeddings (seeded, CPU threads bounded)."""
    import torch

    torch.set_num_threads(config.threads)
    if config.quantizer == "rqkmeans":
        from genrec.sid.rqkmeans import fit_rqkmeans

        return fit_rqkmeans(x, config.levels, config.codebook_size, config.seed)
    from genrec.sid.rqvae import train_rqvae

    _, result = train_rqvae(x, config.rqvae, config.levels, config.codebook_size, config.seed)
    return result


def run(config: SidConfig, run_dir: Path) -> Manifest:
    """Quantise, resolve collisions, write the SID map and the quantiser; report quality in the manifest."""
    from safetensors.numpy import save_file

    paths = RunPaths(Path(run_dir))
    with stage_run("sid", config, paths.stage_dir("sid"), inputs(config, run_dir)) as manifest:
        item_ids = load_items(run_dir)["item_id"].astype(str).tolist()
        x = read_item_embeddings(paths.item_emb, config.embedding, item_ids)
        start = time.perf_counter()
        result = quantise(x, config)
        train_s = time.perf_counter() - start
        codes = resolve(result.codes, result.last_dist, config.collisions)
        if collision_rate(codes) != 0:  # resolve() guarantees this; a failure here is a bug, not bad input
            raise RuntimeError("collision resolution left duplicate SIDs")

        with atomic_output(paths.sid_map) as tmp:
            sid_frame(item_ids, codes).to_parquet(tmp, index=False)
        metadata = {"quantizer": config.quantizer, "config": json.dumps(config.model_dump(mode="json")),
                    "input_dim": str(x.shape[1]), "embedding": config.embedding}
        with atomic_output(paths.rqvae) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in result.tensors.items()}, str(tmp), metadata=metadata)

        row = {item: i for i, item in enumerate(item_ids)}
        baskets = [[row[i] for i in items if i in row] for items in training_items(load_sequences(run_dir)).values()]
        co = co_consumption(result.codes[:, 0], baskets)
        manifest.outputs = [str(paths.sid_map), str(paths.rqvae)]
        manifest.counts = {"items": len(item_ids), "levels": int(codes.shape[1]),
                           "reassigned": int((codes[:, :result.codes.shape[1]] != result.codes).any(1).sum())}
        manifest.metrics = {
            "quantizer": config.quantizer,
            "collision_rate_before": round(collision_rate(result.codes), 6),
            "collision_rate_after": collision_rate(codes),
            "utilization": utilisation(result.codes, config.codebook_size),
            "perplexity": perplexity(result.codes),
            "recon_loss": result.recon_loss,
            # share of the embeddings' variance the quantised reconstruction misses (comparable across inputs)
            "recon_rel": result.recon_loss / max(float(x.var(axis=0).mean()), 1e-12),
            "train_wall_s": round(train_s, 3),
            "extra_level": bool(codes.shape[1] > result.codes.shape[1]),
            "max_extra_code": int(codes[:, -1].max()) if codes.shape[1] > result.codes.shape[1] else 0,
            "co_consumption": co,
        }
        if result.history.get("recon"):
            manifest.metrics["final_train_recon_normalised"] = result.history["recon"][-1]
            manifest.metrics["dead_codes_reset"] = int(sum(result.history.get("dead_codes", [])))
    return manifest
