"""Ensemble distillation: the teachers' averaged targets and the loss, on tiny hand-built models."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from genrec.model.config import ScratchConfig
from genrec.train.distill import DistillationLoss, EnsembleTeacher
from tiny_runs import random_sid_map, save_random_checkpoint

VOCAB = 11


def tiny_lm(seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=16))


def batch() -> dict[str, torch.Tensor]:
    input_ids = torch.tensor([[1, 4, 5, 6, 7, 2], [1, 8, 3, 9, 2, 0]])
    labels = torch.tensor([[-100, -100, -100, 6, 7, 2], [-100, -100, 3, 9, 2, -100]])  # completions; pad ignored
    return {"input_ids": input_ids, "attention_mask": (labels != -100) | (input_ids != 0), "labels": labels}


def test_teacher_averages_log_probabilities_and_renormalises() -> None:
    a, b = tiny_lm(0), tiny_lm(1)
    inputs = batch()
    mixed = EnsembleTeacher([a, b]).log_probs(inputs["input_ids"], inputs["attention_mask"], temperature=2.0)
    by_hand = [F.log_softmax(m(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits / 2.0,
                             dim=-1) for m in (a, b)]
    expected = F.log_softmax((by_hand[0] + by_hand[1]) / 2, dim=-1)
    assert torch.allclose(mixed, expected, atol=1e-5)
    assert torch.allclose(mixed.exp().sum(-1), torch.ones(mixed.shape[:2]), atol=1e-5)
    assert not any(p.requires_grad for p in a.parameters())  # frozen


def test_loss_is_cross_entropy_plus_weighted_divergence_on_completion_tokens() -> None:
    student, other = tiny_lm(0), tiny_lm(2)
    inputs = batch()
    outputs = student(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    targets, mask = inputs["labels"][:, 1:], inputs["labels"][:, 1:] != -100
    logits = outputs.logits[:, :-1][mask]
    cross_entropy = F.cross_entropy(logits, targets[mask], label_smoothing=0.1)

    # a teacher identical to the student adds nothing: the loss is (1 - weight) x cross-entropy
    same = DistillationLoss(EnsembleTeacher([tiny_lm(0)]), weight=0.25, temperature=1.0, label_smoothing=0.1)
    assert torch.allclose(same(outputs.logits, inputs), 0.75 * cross_entropy, atol=1e-5)
    # the trainer's token count (all accumulated batches) divides the sum instead, when given
    assert torch.allclose(same(outputs.logits, inputs, num_items_in_batch=2 * int(mask.sum())),
                          0.375 * cross_entropy, atol=1e-5)

    loss = DistillationLoss(EnsembleTeacher([other]), weight=0.25, temperature=2.0, label_smoothing=0.1)
    teacher = F.log_softmax(other(input_ids=inputs["input_ids"]).logits[:, :-1][mask] / 2.0, dim=-1)
    divergence = (teacher.exp() * (teacher - F.log_softmax(logits / 2.0, dim=-1))).sum(-1).mean() * 4.0
    value = loss(outputs.logits, inputs)
    assert torch.allclose(value, 0.75 * cross_entropy + 0.25 * divergence, atol=1e-5)
    value.backward()  # the student learns; the teacher does not
    assert student.lm_head.weight.grad is not None and other.lm_head.weight.grad is None


def test_distilling_alone_moves_the_student_to_the_teacher() -> None:
    student, teacher = tiny_lm(0), tiny_lm(3)
    inputs = batch()
    loss = DistillationLoss(EnsembleTeacher([teacher]), weight=1.0, temperature=1.0)
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-2)
    values = []
    for _ in range(30):
        value = loss(student(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits, inputs)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        values.append(value.item())
    assert values[-1] < 0.2 * values[0]  # KL(teacher || student) shrinks towards 0


def test_a_teacher_with_another_vocabulary_is_refused(tmp_path: Path) -> None:
    scratch = ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32)
    path = save_random_checkpoint(random_sid_map(random.Random(0), 10, (4, 4, 4)), tmp_path / "teacher", scratch)
    teacher = EnsembleTeacher.load([path], _vocabulary(path))
    assert len(teacher.models) == 1
    with pytest.raises(ValueError, match="another vocabulary"):
        EnsembleTeacher.load([path], {**_vocabulary(path), "<extra>": 999})
    with pytest.raises(FileNotFoundError, match="genrec.json"):
        EnsembleTeacher.load([tmp_path], _vocabulary(path))
    with pytest.raises(ValueError, match="at least one"):
        EnsembleTeacher([])


def _vocabulary(path: Path) -> dict[str, int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path).get_vocab()
