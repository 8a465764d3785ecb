"""The `sft` stage: supervised fine-tuning of the generative recommender with trl's `SFTTrainer`.

Reads sequences, items, the sid map (and curated user interests when the task mix or the prompt uses
them), builds the `scratch` or `llm` model, trains on prompt/completion examples with the loss on the
completion only, evaluates on validation rows (loss + HR/NDCG of constrained beam search on a fixed
sample of validation users) and keeps the best checkpoint (`select_by`). Trainer checkpoints live in
`sft/trainer/`; a killed run resumes from the newest one (when the config and inputs are unchanged). The chosen
model is saved to `sft/ckpt/` (plain HF folder + genrec.json, LoRA merged).

Multi-GPU / multi-node: the same command under `accelerate launch` (see README); the trainer shards batches.
This module is light at import (the pipeline imports `SFTConfig`); torch and trl load inside `run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from genrec.artifacts import Manifest, RunPaths, stage_run, write_json
from genrec.config import DistillConfig, StrictModel, unset_is_absent
from genrec.model.config import ModelConfig
from genrec.train.trainer_dir import trainer_dir


class SFTTasks(StrictModel):
    """Task mix: each weight multiplies its task's natural size (1.0 = every example once per epoch)."""

    history: float = Field(1.0, gt=0, description="training prefix SIDs -> next SID (every train row)")
    alignment: float = Field(0.0, ge=0, description="llm: item title <-> SID, both directions, every item")
    interests: float = Field(0.0, ge=0, description="llm: curated user interests -> each training item's SID")


class SFTConfig(StrictModel):
    """Model, task mix, optimiser and checkpoint choice of the SFT stage."""

    model: ModelConfig = ModelConfig()
    tasks: SFTTasks = SFTTasks()
    distill: DistillConfig | None = Field(
        None, exclude_if=unset_is_absent, description="train towards teacher checkpoints' next-token distribution "
        "too (label smoothing still applies to the label part); the validation loss is then this objective")
    epochs: float = Field(10.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(256, ge=1, description="per device")
    grad_accum: int = Field(1, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="share of each target's probability spread over the "
                                   "vocabulary (trl 1.x's label smoother, deprecated for trl 2; costs a second forward "
                                   "for trl's metrics). 0.2 on scientific (chosen on validation): test NDCG@10 .0593 "
                                   "over five seeds, .0538 / .0553 without; lowers beauty (BENCHMARKS.md, SFT)")
    warmup: float = Field(0.05, ge=0, lt=1, description="fraction of steps of linear warm-up")
    scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    max_train_examples: int | None = Field(None, ge=1, description="cap on training examples (quick runs)")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations; None = every epoch")
    select_by: Literal["ndcg@10", "loss"] = Field("ndcg@10", description="validation metric choosing the checkpoint")
    average_top: int = Field(1, ge=1, description="save the uniform weight average of this many best checkpoints "
                             "by select_by (1 = the best one; keeps that many in sft/trainer/); full-weight models "
                             "only, not LoRA. 3 on scientific: +0.0006 NDCG@10 on validation and test, mean of three "
                             "runs (BENCHMARKS.md, SFT)")
    valid_users: int = Field(512, ge=1, description="validation users in the loss and beam-search probe")
    num_beams: int = Field(20, ge=10, description="beam width of the validation probe")
    eval_batch_size: int = Field(32, ge=1)
    max_interests: int = Field(5, ge=1, description="curated interests per user in prompts (best scored first)")
    resume: bool = Field(True, description="continue from sft/trainer/checkpoint-* when the config and inputs are unchanged")
    group_by_length: bool = Field(True, description="batch examples of similar length (less padding, faster)")
    logging_steps: int = Field(50, ge=1)
    seed: int = 42
    threads: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _tasks_fit_model(self) -> SFTConfig:
        if self.model.kind == "scratch" and (self.tasks.alignment or self.tasks.interests):
            raise ValueError("sft.tasks.alignment / sft.tasks.interests need sft.model.kind=llm (text prompts)")
        if self.average_top > 1 and self.model.lora is not None:
            raise ValueError("sft.average_top > 1 averages full weights; LoRA checkpoints hold adapters only")
        return self

    @property
    def greater_is_better(self) -> bool:
        """Whether a higher `select_by` value is a better checkpoint."""
        return self.select_by != "loss"

    @property
    def uses_interests(self) -> bool:
        return self.model.interests or self.tasks.interests > 0


def inputs(config: SFTConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    needed = [paths.sequences, paths.items, paths.sid_map]
    if config.distill is not None:
        needed += [Path(teacher) / "model.safetensors" for teacher in config.distill.teachers]
    return needed + [paths.interests_labelled] if config.uses_interests else needed


def run(config: SFTConfig, run_dir: Path) -> Manifest:
    """Train, choose the checkpoint on validation, save it to `sft/ckpt/`."""
    import shutil
    import time

    import torch
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig as TrlSFTConfig

    from genrec.data import load_items, load_sequences
    from genrec.decode.trie import SidTrie
    from genrec.model.build import build_model
    from genrec.model.checkpoint import save_checkpoint
    from genrec.model.sid_tokens import parse_sid, sid_vocabulary
    from genrec.model.sources import lookup_sids, read_sid_map, user_interests
    from genrec.train.checkpoint_average import KeepTopCheckpoints, load_average, ranked_checkpoints
    from genrec.train.distill import DistillationLoss, EnsembleTeacher
    from genrec.train.sft_data import (ExampleBuilder, SftSources, history_examples, to_dataset, train_examples,
                                      valid_sample)
    from genrec.train.sft_trainer import RankingProbe, RankingSFTTrainer, RichProgressCallback

    paths = RunPaths(Path(run_dir))
    with stage_run("sft", config, paths.stage_dir("sft"), inputs(config, run_dir)) as manifest:
        torch.set_num_threads(config.threads)
        sequences = load_sequences(run_dir)
        items = load_items(run_dir)
        sid_map = read_sid_map(paths.sid_map)
        sid_of = dict(zip(sid_map["item_id"], sid_map["sid"], strict=True))
        lookup_sids(sid_of, list(items["item_id"]))  # every item needs a SID
        sources = SftSources(sequences, sid_of, dict(zip(items["item_id"], items["title"].fillna(""), strict=True)),
                             user_interests(paths.interests_labelled, config.max_interests) if config.uses_interests else {})

        levels = len(parse_sid(sid_map["sid"].iloc[0]))
        set_seed(config.seed)  # the scratch model's initial weights too, not only the trainer's data order
        model, tokenizer, info = build_model(config.model, sid_vocabulary(sid_map["sid"]), levels,
                                            max_interests=config.max_interests, item_ids=list(sid_map["item_id"]))
        builder = ExampleBuilder(tokenizer, info, sources)
        train, per_task = train_examples(builder, config.tasks.model_dump(), config.seed, config.max_train_examples)
        valid_rows = valid_sample(sequences, config.valid_users, config.seed)
        valid = history_examples(builder, valid_rows)
        probe = RankingProbe(users=list(valid_rows["user_id"]), prompts=[prompt for prompt, _ in valid],
                             targets=dict(zip(valid_rows["user_id"], valid_rows["target"], strict=True)),
                             trie=SidTrie.from_sid_map(sid_map, tokenizer), num_beams=config.num_beams,
                             batch_size=config.eval_batch_size)

        strategy = "steps" if config.eval_every else "epoch"
        args = TrlSFTConfig(
            output_dir=str(trainer_dir(paths.stage_dir("sft"), config, manifest.inputs, config.resume)),
            num_train_epochs=config.epochs,
            max_steps=config.max_steps or -1, per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
            learning_rate=config.lr, weight_decay=config.weight_decay, warmup_steps=config.warmup,
            label_smoothing_factor=0.0 if config.distill else config.label_smoothing,  # else the loss applies it
            lr_scheduler_type=config.scheduler, eval_strategy=strategy, save_strategy=strategy,
            eval_steps=config.eval_every, save_steps=config.eval_every,
            save_total_limit=None if config.average_top > 1 else 2,
            load_best_model_at_end=True, metric_for_best_model=config.select_by,
            greater_is_better=config.greater_is_better, logging_steps=config.logging_steps, report_to="none",
            seed=config.seed, data_seed=config.seed, completion_only_loss=True, max_length=None,
            disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False, bf16=False,
            train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        )
        distill = config.distill
        distillation = None if distill is None else DistillationLoss(
            EnsembleTeacher.load(distill.teachers, tokenizer.get_vocab()), distill.weight, distill.temperature,
            config.label_smoothing)
        trainer = RankingSFTTrainer(model=model, args=args, train_dataset=to_dataset(train),
                                    eval_dataset=to_dataset(valid), processing_class=tokenizer, probe=probe,
                                    distillation=distillation,
                                    callbacks=[RichProgressCallback()]
                                    + ([KeepTopCheckpoints(config.average_top)] if config.average_top > 1 else []))
        last = get_last_checkpoint(args.output_dir) if config.resume else None
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=last)
        train_wall = time.perf_counter() - start
        averaged = ranked_checkpoints(trainer.state.log_history, Path(args.output_dir), config.select_by,
                                      config.greater_is_better)[:config.average_top] if config.average_top > 1 else []
        if averaged:
            load_average(trainer.accelerator.unwrap_model(trainer.model), averaged)

        if trainer.is_world_process_zero():
            tmp = paths.sft_ckpt.with_name(".ckpt.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            save_checkpoint(trainer.accelerator.unwrap_model(trainer.model), tokenizer, info, tmp)
            shutil.rmtree(paths.sft_ckpt, ignore_errors=True)
            tmp.rename(paths.sft_ckpt)
        evals = [e for e in trainer.state.log_history if "eval_loss" in e or "eval_ndcg@10" in e]
        curve: dict[int, dict[str, float]] = {}
        for entry in evals:
            curve.setdefault(entry["step"], {}).update({k[5:]: v for k, v in entry.items() if k.startswith("eval_")
                                                         and k[5:] in ("loss", "hr@5", "hr@10", "ndcg@5", "ndcg@10")})
        valid_curve = [{"step": s, **m} for s, m in sorted(curve.items())]
        train_curve = [{k: e[k] for k in ("step", "epoch", "loss", "learning_rate", "grad_norm") if k in e}
                       for e in trainer.state.log_history if "loss" in e]
        if trainer.is_world_process_zero():
            write_json(paths.stage_dir("sft") / "curves.json", {"train": train_curve, "valid": valid_curve})
        manifest.outputs += [str(paths.sft_ckpt), str(paths.stage_dir("sft") / "curves.json")]
        manifest.counts.update({f"train_{k}": v for k, v in per_task.items()})
        manifest.counts.update(train_examples=len(train), valid_examples=len(valid), steps=trainer.state.global_step,
                               parameters=sum(p.numel() for p in model.parameters()),
                               resumed=int(last is not None))
        manifest.metrics.update(
            select_by=config.select_by, best_metric=trainer.state.best_metric,
            best_checkpoint=trainer.state.best_model_checkpoint,
            averaged_checkpoints=[path.name for path in averaged], train_wall_s=round(train_wall, 1),
            train_loss=next((e["train_loss"] for e in reversed(trainer.state.log_history) if "train_loss" in e), None),
            valid_curve=valid_curve, model_kind=config.model.kind)
    return manifest
