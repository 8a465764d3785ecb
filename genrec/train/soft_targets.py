"""Knowledge-distillation arithmetic shared by the SFT decoder and SASRec: an ensemble's soft targets and the
loss that mixes them with the labels (Hinton et al., 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def ensemble_log_probs(logits: Sequence[torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """The members' log-softmax(logits / T) averaged and renormalised: the distribution a seed ensemble ranks by."""
    mean = sum(F.log_softmax(member.float() / temperature, dim=-1) for member in logits) / len(logits)
    return F.log_softmax(mean, dim=-1)


def soft_target_loss(student_logits: torch.Tensor, targets: torch.Tensor, teacher_log_probs: torch.Tensor,
                     weight: float, temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed over the rows: (1 - weight) x cross-entropy on `targets` (with label smoothing)
    + weight x T^2 x KL(teacher || student at temperature T). Rows are prediction positions, columns classes."""
    student_logits = student_logits.float()
    cross_entropy = F.cross_entropy(student_logits, targets, reduction="sum", label_smoothing=label_smoothing)
    student = F.log_softmax(student_logits / temperature, dim=-1)
    divergence = F.kl_div(student, teacher_log_probs, log_target=True, reduction="sum") * temperature ** 2
    return (1 - weight) * cross_entropy + weight * divergence
