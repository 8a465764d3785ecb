"""Uniform weight average of the best trainer checkpoints (a "model soup" of one run).

The validation probe is a sample of users, so the single best checkpoint is partly chosen by noise, and after the
peak the weights wander between equally good points. Averaging the k best checkpoints of one run (same start, same
basin) gives one model of the same size and speed; `sft.average_top` turns it on (BENCHMARKS.md, SFT).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

WEIGHTS = "model.safetensors"


def ranked_checkpoints(log_history: list[dict], output_dir: Path, metric: str, greater_is_better: bool) -> list[Path]:
    """Trainer checkpoints on disk, best validation `metric` first (the eval logged at each checkpoint's step)."""
    scores: dict[int, float] = {}
    for entry in log_history:
        if f"eval_{metric}" in entry:
            scores[entry["step"]] = entry[f"eval_{metric}"]
    found = [(score, step) for step, score in scores.items() if (Path(output_dir) / f"checkpoint-{step}").is_dir()]
    # equal scores: the later step first
    found.sort(key=lambda pair: (pair[0] if greater_is_better else -pair[0], pair[1]), reverse=True)
    return [Path(output_dir) / f"checkpoint-{step}" for _, step in found]


def average_weights(checkpoints: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the checkpoints' weights (in float32, returned in each tensor's own dtype)."""
    if not checkpoints:
        raise ValueError("no trainer checkpoint to average")
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path in checkpoints:
        file = path / WEIGHTS
        if not file.is_file():
            raise FileNotFoundError(f"{file} missing: only full-weight checkpoints can be averaged")
        weights = load_file(file)
        if total and weights.keys() != total.keys():
            raise ValueError(f"{file} holds other tensors than {checkpoints[0] / WEIGHTS}")
        for name, tensor in weights.items():
            dtypes[name] = tensor.dtype
            total[name] = total[name] + tensor.float() if name in total else tensor.float()
    return {name: (tensor / len(checkpoints)).to(dtypes[name]) for name, tensor in total.items()}


def load_average(model: torch.nn.Module, checkpoints: list[Path]) -> None:
    """Put the average of `checkpoints` into `model`. Keys a checkpoint leaves out must be tied to a saved one."""
    weights = average_weights(checkpoints)
    own = model.state_dict()
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise ValueError(f"checkpoint tensors the model does not have: {unknown[:5]}")
    model.load_state_dict(weights, strict=False)
    loaded = {own[name].data_ptr() for name in weights}
    untied = sorted(name for name in set(own) - set(weights) if own[name].data_ptr() not in loaded)
    if untied:
        raise ValueError(f"model weights missing from the checkpoints (not tied to saved ones): {untied[:5]}")


class KeepTopCheckpoints(TrainerCallback):
    """After each save, delete trainer checkpoints that are neither among the `keep` best by the trainer's
    `metric_for_best_model` nor the newest (which a killed run resumes from)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        ranked = ranked_checkpoints(state.log_history, Path(args.output_dir), args.metric_for_best_model,
                                    args.greater_is_better)
        newest = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        for path in ranked[self.keep:]:
            if path != newest:
                shutil.rmtree(path, ignore_errors=True)
