"""Ensemble distillation for SFT: one student learns from the labels and from its teachers' next-token distribution.

Decoders trained with different seeds rank better ensembled (mean log-probability) than any one of them
(BENCHMARKS.md, "Seed ensemble"), but an ensemble costs one model per member at serving time. Distillation
(Hinton et al., 2015) trains a single model towards the ensemble's soft targets beside the one-hot labels, so
serving stays one model. Teachers are genrec checkpoints with the student's exact vocabulary, frozen in eval mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import PreTrainedModel

from genrec.model.checkpoint import load_checkpoint
from genrec.train.soft_targets import ensemble_log_probs, soft_target_loss


class EnsembleTeacher:
    """Frozen teacher models whose next-token log-probabilities are averaged (then renormalised), as the seed
    ensemble ranks items."""

    def __init__(self, models: Sequence[PreTrainedModel]):
        if not models:
            raise ValueError("distillation needs at least one teacher")
        self.models = [model.eval().requires_grad_(False) for model in models]

    @classmethod
    def load(cls, paths: Sequence[Path], vocabulary: Mapping[str, int]) -> EnsembleTeacher:
        """Load teacher checkpoints, refusing one whose token ids differ from the student's `vocabulary`."""
        models = []
        for path in paths:
            model, tokenizer, _ = load_checkpoint(Path(path))
            if tokenizer.get_vocab() != dict(vocabulary):
                raise ValueError(f"teacher {path} has another vocabulary than the student (another SID map?): "
                                 "teachers must be trained on the same sid_map.parquet")
            models.append(model)
        return cls(models)

    @torch.no_grad()
    def log_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  temperature: float = 1.0) -> torch.Tensor:
        """(batch, length, vocab) log-probabilities of the next token: the renormalised mean of the teachers'."""
        return ensemble_log_probs([model.to(input_ids.device)(input_ids=input_ids, attention_mask=attention_mask).logits
                                   for model in self.models], temperature)


class DistillationLoss:
    """The SFT loss with teachers: on the completion tokens,
    (1 - weight) x cross-entropy on the labels (with label smoothing) + weight x T^2 x KL(teacher || student),
    summed and divided by the number of label tokens (the trainer's `num_items_in_batch` when it counts them)."""

    def __init__(self, teacher: EnsembleTeacher, weight: float, temperature: float, label_smoothing: float = 0.0):
        self.teacher, self.weight, self.temperature, self.label_smoothing = teacher, weight, temperature, label_smoothing

    def __call__(self, logits: torch.Tensor, inputs: Mapping[str, torch.Tensor],
                 num_items_in_batch: int | torch.Tensor | None = None) -> torch.Tensor:
        """`logits` of the student on `inputs` (input_ids, attention_mask, labels with -100 outside completions)."""
        targets = inputs["labels"][:, 1:]
        mask = targets != -100
        teacher = self.teacher.log_probs(inputs["input_ids"], inputs.get("attention_mask"),
                                         self.temperature)[:, :-1][mask]
        total = soft_target_loss(logits[:, :-1][mask], targets[mask], teacher, self.weight, self.temperature,
                                 self.label_smoothing)
        tokens = mask.sum() if num_items_in_batch is None else num_items_in_batch
        return total / torch.as_tensor(tokens, device=total.device).clamp(min=1)
