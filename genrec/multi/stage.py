"""The multi stage: train one multi-interest retriever (base / GemiRec / ULIM / DMI), save it to
`multi/<system>/model.pt` and write the test users' merged lists to `eval/<system>/recs.jsonl`;
`recommend` re-ranks from the saved model (e.g. with another merge rule) without training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genrec.artifacts import Manifest, RunPaths, stage_run
from genrec.data import load_items, load_sequences
from genrec.embed.interests import interest_file
from genrec.eval.recs import write_recs
from genrec.multi.config import MultiConfig

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from genrec.multi.data import SplitTensors


def inputs(config: MultiConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    found = [paths.items, paths.sequences]
    if config.categories == "sid":
        found.append(paths.sid_map)
    if config.model.model == "gemirec" and config.model.seed_interests != "none":
        _, path = interest_file(Path(run_dir), config.model.seed_interests)
        found.append(path if path is not None else paths.interests)
    return found


def model_path(config: MultiConfig, run_dir: Path) -> Path:
    return RunPaths(Path(run_dir)).stage_dir("multi") / config.system_name / "model.pt"


def item_categories(config: MultiConfig, run_dir: Path, items: pd.DataFrame) -> tuple[torch.Tensor, list[str], str]:
    """Category index (1..C) per item, the vocabulary, and where it came from (metadata or sid)."""
    import torch

    from genrec.multi.data import category_indices, metadata_categories, sid_categories

    names = None if config.categories == "sid" else metadata_categories(items, config.category_depth)
    source = "metadata"
    if names is None:
        if config.categories == "metadata":
            raise ValueError("multi.categories=metadata: items.parquet has no categories; use auto or sid")
        names, source = sid_categories(items, RunPaths(Path(run_dir)).sid_map), "sid"
    index, vocab = category_indices(names)
    return torch.from_numpy(index), vocab, source


def _write(config: MultiConfig, run_dir: Path, model, split: SplitTensors, categories: torch.Tensor,
           item_ids: list[str], manifest: Manifest) -> None:
    from genrec.multi.train import coverage_at, retrieve_all

    paths = RunPaths(Path(run_dir))
    top, collapse = retrieve_all(model, split.test.histories, config.merge, config.k)
    ids = [[item_ids[c] for c in row] for row in top.tolist()]
    manifest.counts["users"] = write_recs(paths.recs(config.system_name), zip(split.test.users, ids, strict=True))
    manifest.outputs.append(str(paths.recs(config.system_name)))
    manifest.metrics.update({"collapse": round(float(collapse.mean()), 4),
                             "coverage@10": round(coverage_at(top, categories), 3), "merge": config.merge})


def run(config: MultiConfig, run_dir: Path) -> Manifest:
    """Train the configured model (resuming a killed run), save it, write the test recommendations."""
    from genrec.data.tensors import item_index
    from genrec.multi.data import build_examples
    from genrec.multi.train import ModelInputs, fit, save_model

    paths = RunPaths(Path(run_dir))
    cfg = config.model
    with stage_run("multi", config, paths.stage_dir("multi"), inputs(config, run_dir)) as manifest:
        items, sequences = load_items(run_dir), load_sequences(run_dir)
        index = item_index(items)
        item_ids = list(index)
        if config.k > len(item_ids):
            raise ValueError(f"multi.k={config.k} exceeds the number of items ({len(item_ids)})")
        categories, vocab, source = item_categories(config, run_dir, items)
        split = build_examples(sequences, index, cfg.max_len)
        model_inputs, extra = ModelInputs(item_ids, categories), {"category_names": vocab}
        if cfg.model == "gemirec" and cfg.dictionary and cfg.seed_interests != "none":
            from genrec.multi.seeding import seed_codes

            seeding = seed_codes(cfg, Path(run_dir), item_ids)
            model_inputs.item_codes, extra["code_names"] = seeding.item_codes, seeding.names
            manifest.counts["seeded_items"] = int((seeding.item_codes >= 0).sum())
            manifest.metrics["seeded_from"] = str(seeding.path)
            manifest.metrics["code_names"] = seeding.names[:16]
        out_dir = model_path(config, run_dir).parent
        result = fit(cfg, model_inputs, split.train.histories, split.train.targets, split.valid.histories,
                     split.valid.targets, config.merge, out_dir)
        save_model(model_path(config, run_dir), result.model, cfg, model_inputs, extra)
        manifest.outputs.append(str(model_path(config, run_dir)))
        manifest.counts.update(items=len(item_ids), categories=len(vocab), longest_history=split.longest_history,
                               history_len=int(split.test.histories.shape[1]))
        manifest.metrics.update(model=cfg.model, system=config.system_name, category_source=source, **result.summary)
        _write(config, run_dir, result.model, split, categories, item_ids, manifest)
    return manifest


def recommend(config: MultiConfig, run_dir: Path) -> Manifest:
    """Rank the test users with the saved model under this config's merge rule and k (no training)."""
    from genrec.data.tensors import item_index
    from genrec.multi.data import build_examples
    from genrec.multi.train import load_model

    paths = RunPaths(Path(run_dir))
    path = model_path(config, run_dir)
    with stage_run("multi_recommend", config, paths.stage_dir("multi") / config.system_name,
                   [paths.items, paths.sequences, path]) as manifest:
        model, model_inputs, _ = load_model(path)
        items, sequences = load_items(run_dir), load_sequences(run_dir)
        index = item_index(items)
        if list(index) != model_inputs.item_ids:
            raise ValueError(f"{path}: trained on another item table than {paths.items}")
        split = build_examples(sequences, index, model.cfg.max_len)
        _write(config, run_dir, model, split, model_inputs.categories, model_inputs.item_ids, manifest)
    return manifest
