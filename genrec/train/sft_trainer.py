"""trl's `SFTTrainer`, plus validation NDCG/HR@k from constrained beam search at every evaluation.

The ranking metric is what the checkpoint is chosen by (`metric_for_best_model="ndcg@10"`); validation
loss is logged beside it. The sample of validation users is fixed, so evaluations are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import TrainerCallback
from trl import SFTTrainer

from genrec.decode.hf_beam import constrained_beam_search
from genrec.decode.trie import SidTrie
from genrec.eval.metrics import topk_metrics
from genrec.progress import progress_bar
from genrec.train.distill import DistillationLoss


@dataclass(frozen=True)
class RankingProbe:
    """Validation users' prompts and targets, and how to search them."""

    users: list[str]
    prompts: list[list[int]]
    targets: dict[str, str]
    trie: SidTrie
    num_beams: int
    batch_size: int

    def metrics(self, model) -> dict[str, float]:
        """HR/NDCG@5/10 of the model's top-10 on the probe users."""
        was_training = model.training
        model.eval()
        ranked = constrained_beam_search(model, self.prompts, self.trie, self.num_beams, 10, self.batch_size)
        model.train(was_training)
        recs = {user: [item for item, _ in r] for user, r in zip(self.users, ranked, strict=True)}
        return topk_metrics(recs, self.targets, [5, 10])


class RankingSFTTrainer(SFTTrainer):
    """`SFTTrainer` whose `evaluate` also reports the probe's HR/NDCG (prefixed like the loss: eval_ndcg@10) and
    which trains with a `DistillationLoss` when given one."""

    def __init__(self, *args, probe: RankingProbe | None = None, distillation: DistillationLoss | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.probe, self.distillation = probe, distillation

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """trl's loss, or with teachers the distillation loss (one student forward; trl's token metrics skipped)."""
        if self.distillation is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False)
        loss = self.distillation(outputs.logits, inputs, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if self.probe is not None:
            ranking = {f"{metric_key_prefix}_{k}": v
                       for k, v in self.probe.metrics(self.accelerator.unwrap_model(self.model)).items()}
            self.log(ranking)
            metrics.update(ranking)
        return metrics


class RichProgressCallback(TrainerCallback):
    """Training progress as a rich bar (steps done / total, latest loss and validation NDCG@10)."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = progress_bar()
            self.bar.start()
            self.task = self.bar.add_task("sft", total=state.max_steps, completed=state.global_step, status="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            shown = {k: logs[k] for k in ("loss", "eval_loss", "eval_ndcg@10") if k in logs}
            if shown:
                self.bar.update(self.task, status=" ".join(f"{k}={v:.4g}" for k, v in shown.items()))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
