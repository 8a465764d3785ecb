"""GRPO stage end to end on a tiny run folder (tiny data, hand-made SIDs, a 2-layer scratch model built here)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from genrec.artifacts import RunPaths
from genrec.config import ConfigError
from genrec.data import DataConfig, load_sequences
from genrec.data import run as run_data
from genrec.model import ModelConfig, ScratchConfig, build_model, load_checkpoint, save_checkpoint, sid_vocabulary
from genrec.pipeline import load_run_config
from genrec.train.grpo import GRPOStageConfig, reward_curves, run

SIDS = {str(i): f"<a_{i % 2}><b_{i % 3}><c_{i}>" for i in range(8)}


def tiny_run(tiny_lcrec: Path, run_dir: Path, interests: bool) -> Path:
    """data stage + a hand-made sid map + an untrained scratch checkpoint (+ a reward model and labels)."""
    run_data(DataConfig(name="tiny", path=tiny_lcrec), run_dir)
    paths = RunPaths(run_dir)
    paths.sid_map.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": list(SIDS), "codes": [[i % 2, i % 3, i] for i in range(8)],
                  "sid": list(SIDS.values())}).to_parquet(paths.sid_map)
    torch.manual_seed(0)
    model_config = ModelConfig(kind="scratch", scratch=ScratchConfig(hidden=16, layers=2, heads=2, intermediate=32))
    model, tokenizer, info = build_model(model_config, sid_vocabulary(SIDS.values()), sid_levels=3)
    save_checkpoint(model, tokenizer, info, paths.sft_ckpt)
    if interests:
        from genrec.reward.config import DEFAULT_ENCODER
        from genrec.reward.model import PairHead, RewardModel, TextEncoder, load_encoder

        encoder = TextEncoder(load_encoder(DEFAULT_ENCODER))
        RewardModel(encoder, PairHead(encoder.dim, 8, 0.0), {"encoder": DEFAULT_ENCODER}).save(paths.reward_model, False)
        rows = [("user", "0", "lab safety", 1), ("user", "0", "gardening", 0), ("user", "2", "electronics repair", 1),
                ("item", "3", "measuring liquids", 1), ("item", "4", "soldering", 0)]
        pd.DataFrame({"kind": [r[0] for r in rows], "entity_id": [r[1] for r in rows], "interest": [r[2] for r in rows],
                      "evidence": "", "reasoning": "", "models": [["test"]] * len(rows), "agreement": 1,
                      "prompt_hash": "h", "score": [0.9 if r[3] else 0.1 for r in rows], "label": [r[3] for r in rows],
                      "threshold": 0.5}).to_parquet(paths.interests_labelled)
    return run_dir


def small_config(**overrides) -> GRPOStageConfig:
    base = dict(steps=3, prompts_per_step=2, num_generations=4, lr=1e-3, eval_every=2, valid_users=6, num_beams=10,
                max_prompts=16)
    return GRPOStageConfig(**{**base, **overrides})


@pytest.mark.slow
def test_grpo_stage_end_to_end(tiny_lcrec: Path, tmp_path: Path) -> None:
    run_dir = tiny_run(tiny_lcrec, tmp_path / "run", interests=True)
    manifest = run(small_config(), run_dir)

    assert manifest.counts["steps"] == 3 and manifest.counts["resumed"] == 0
    assert manifest.counts["rollouts"] == 3 * 2 * 4
    assert manifest.counts["invalid_rollouts"] == 0
    curves = manifest.metrics["reward_curves"]
    assert curves["step"] == [1.0, 2.0, 3.0]
    for term in ("exact_hit", "sid_prefix", "rank_penalty", "invalid_penalty", "interest_reward"):
        assert len(curves[term]) == 3, term
    assert all(v == 0.0 for v in curves["invalid_penalty"])
    assert all(0.0 <= v <= 1.0 for v in curves["interest_reward"])
    assert manifest.counts["users_with_interests"] == 2  # users 0 and 2 have a curated (label 1) interest
    train_users = load_sequences(run_dir).query("split == 'train'")["user_id"]
    assert manifest.counts["prompts_with_interests"] == int(train_users.isin(["0", "2"]).sum()) > 0  # all rows are prompts
    assert set(manifest.metrics["valid_curve"]) == {"0", "2", "3"}
    assert manifest.metrics["rollouts_per_s"] > 0

    paths = RunPaths(run_dir)
    saved = json.loads((paths.stage_dir("grpo") / "manifest.json").read_text())
    assert saved["counts"]["invalid_rollouts"] == 0
    model, tokenizer, info = load_checkpoint(paths.grpo_ckpt)
    assert info.kind == "scratch" and info.sid_levels == 3
    assert "generate" not in vars(model)
    sft, _, _ = load_checkpoint(paths.sft_ckpt)
    best = manifest.counts["best_step"]
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), sft.state_dict().values(), strict=True))
    assert same == (best == 0)  # step 0 = the SFT weights; any later step has moved (lr 1e-3)

    # a run killed after step 2's checkpoint resumes from it, with its validation state and counters
    import shutil

    trainer_dir = paths.stage_dir("grpo") / "trainer"
    assert (trainer_dir / "checkpoint-2").is_dir()
    shutil.rmtree(trainer_dir / "checkpoint-3")
    again = run(small_config(), run_dir)
    assert again.counts["resumed"] == 1 and again.counts["steps"] == 3
    assert again.counts["rollouts"] == 3 * 2 * 4 and again.counts["invalid_rollouts"] == 0
    assert set(again.metrics["valid_curve"]) == {"0", "2", "3"}


@pytest.mark.slow
def test_cli_grpo_with_rule_rewards_only_needs_no_reward_model(tiny_lcrec: Path, tmp_path: Path) -> None:
    """Also the beam-rollout path through trl's trainer (the end-to-end test above samples)."""
    from typer.testing import CliRunner

    from genrec.cli import app

    run_dir = tiny_run(tiny_lcrec, tmp_path / "run", interests=False)
    sets = [f"run_dir={run_dir}", "grpo.steps=2", "grpo.prompts_per_step=2", "grpo.num_generations=4", "grpo.beta=0",
            "grpo.weights.interest_reward=0", "grpo.valid_users=4", "grpo.num_beams=10", "grpo.max_prompts=8",
            "grpo.rollout=beam"]
    result = CliRunner().invoke(app, ["grpo", *[arg for s in sets for arg in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert "invalid 0" in result.output
    manifest = json.loads((RunPaths(run_dir).stage_dir("grpo") / "manifest.json").read_text())
    assert manifest["metrics"]["reward_terms"] == ["exact_hit", "sid_prefix", "rank_penalty", "invalid_penalty"]
    assert manifest["counts"]["invalid_rollouts"] == 0 and manifest["counts"]["rollouts"] == 2 * 2 * 4


def test_missing_reward_model_is_named(tiny_lcrec: Path, tmp_path: Path) -> None:
    run_dir = tiny_run(tiny_lcrec, tmp_path / "run", interests=False)
    with pytest.raises(FileNotFoundError, match="reward_model"):
        run(small_config(), run_dir)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="grpo.num_generations"):
        load_run_config(None, ["grpo.num_generations=1"])
    with pytest.raises(ConfigError, match="grpo.weights.bogus"):
        load_run_config(None, ["grpo.weights.bogus=1"])


def test_reward_curves_from_log_history() -> None:
    history = [{"loss": 0.1, "reward": 0.5, "rewards/exact_hit/mean": 0.25, "rewards/exact_hit/std": 0.1, "kl": 0.01, "step": 1},
               {"train_runtime": 1.0, "step": 1}]
    assert reward_curves(history) == {"step": [1.0], "exact_hit": [0.25], "reward": [0.5], "kl": [0.01]}
    # trl logs None for a term that scored nobody in a step (interest reward, no user with interests)
    history[0]["rewards/interest_reward/mean"] = None
    assert reward_curves(history)["interest_reward"] == [None]


def test_sid_logprobs_are_trls_unmasked_logprobs_and_ignore_padding() -> None:
    """The rank penalty's policy score = what trl's loss sees (its fused LM head: full-vocabulary log-softmax)
    and what beam search ranks by; the rollout was sampled from the trie-masked, renormalised distribution,
    which puts more mass on every valid SID (per token the gap is log Z(prefix) <= 0)."""
    from transformers import GenerationConfig
    from trl.trainer.utils import add_fused_lm_head

    from genrec.decode.trie import SidTrie
    from genrec.model.tokenizer import sid_token_ids
    from genrec.train.grpo import ConstrainedRollout, sid_logprobs

    torch.manual_seed(0)
    model_config = ModelConfig(kind="scratch", scratch=ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32))
    model, tokenizer, _ = build_model(model_config, sid_vocabulary(SIDS.values()), sid_levels=3)
    trie = SidTrie(list(SIDS), [sid_token_ids(tokenizer, s) for s in SIDS.values()], tokenizer.eos_token_id)
    rollout = ConstrainedRollout(model, trie)
    rollout.install()
    prompt_ids = [tokenizer.bos_token_id, *sid_token_ids(tokenizer, SIDS["1"]), tokenizer.convert_tokens_to_ids("<ans>")]
    prompt = torch.tensor([prompt_ids] * 4)
    sequences = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                               generation_config=GenerationConfig(do_sample=True, max_new_tokens=4, top_k=0,
                                                                  pad_token_id=tokenizer.pad_token_id,
                                                                  eos_token_id=tokenizer.eos_token_id))
    rollout.uninstall()
    assert rollout.invalid == 0 and rollout.rollouts == 4

    prompt_len, depth = prompt.shape[1], 3
    chosen = sequences[:, prompt_len:prompt_len + depth]
    scores = torch.tensor(sid_logprobs(model, [prompt_ids] * 4, chosen.tolist(), tokenizer.pad_token_id))
    with torch.no_grad():
        logits = model(input_ids=sequences).logits[:, prompt_len - 1:prompt_len - 1 + depth]
        add_fused_lm_head(model)
        labels = sequences.clone()
        labels[:, :prompt_len] = -100
        trl_logps = model(input_ids=sequences, labels=labels, fused_lm_head=True).log_probs[:, prompt_len - 1:prompt_len - 1 + depth]
    torch.testing.assert_close(scores, trl_logps.sum(-1).to(scores.dtype), rtol=1e-4, atol=1e-4)
    masked = torch.full_like(logits, float("-inf"))
    for row in range(len(chosen)):
        for pos in range(depth):
            allowed = trie.allowed(chosen[row, :pos].tolist())
            masked[row, pos, allowed] = logits[row, pos, allowed]
    masked_logps = torch.log_softmax(masked, -1).gather(-1, chosen.unsqueeze(-1)).squeeze(-1).sum(-1)
    assert torch.all(masked_logps > scores)  # the sampler's distribution vs the policy's raw score

    # a longer prompt in the same batch left-pads this one: its score must not change
    longer = [tokenizer.bos_token_id, *sid_token_ids(tokenizer, SIDS["2"]), *sid_token_ids(tokenizer, SIDS["3"]),
              tokenizer.convert_tokens_to_ids("<ans>")]
    mixed = sid_logprobs(model, [prompt_ids, longer], [chosen[0].tolist()] * 2, tokenizer.pad_token_id)
    alone = sid_logprobs(model, [longer], [chosen[0].tolist()], tokenizer.pad_token_id)
    assert mixed[0] == pytest.approx(float(scores[0]), abs=1e-5) and mixed[1] == pytest.approx(alone[0], abs=1e-5)
    assert mixed[0] != pytest.approx(mixed[1], abs=1e-3)  # the history matters


def test_constrained_rollout_keeps_trls_sampling_config_and_yields_valid_sids() -> None:
    """trl passes its own GenerationConfig (sampling): the rollout returns sequences only, every SID valid,
    without changing the caller's config (it sets return_dict_in_generate on a copy, not beside it)."""
    from transformers import GenerationConfig

    from genrec.decode.trie import SidTrie
    from genrec.train.grpo import ConstrainedRollout

    torch.manual_seed(0)
    model, tokenizer, info = build_model(ModelConfig(scratch=ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32)),
                                         sid_vocabulary(SIDS.values()), sid_levels=3)
    trie = SidTrie.from_sid_map(pd.DataFrame({"item_id": list(SIDS), "sid": list(SIDS.values())}), tokenizer)
    config = GenerationConfig(do_sample=True, temperature=1.0, max_new_tokens=3, num_return_sequences=4,
                              pad_token_id=trie.eos_token_id)
    rollout = ConstrainedRollout(model, trie)
    rollout.install()
    try:
        prompt = torch.tensor([[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["<a_0>", "<b_0>", "<c_0>"]),
                                tokenizer.convert_tokens_to_ids("<ans>")]])
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=config)
    finally:
        rollout.uninstall()
    assert isinstance(out, torch.Tensor) and out.shape == (4, prompt.shape[1] + 3)
    assert rollout.rollouts == 4 and rollout.invalid == 0
    assert not config.return_dict_in_generate and config.do_sample is True


def test_beam_rollouts_are_each_groups_best_distinct_sids_in_order() -> None:
    """With beam rollouts, each group of identical prompts gets the top `num_generations` items of constrained beam
    search on that prompt, best first (whatever trl's sampling config says); an ungrouped batch is refused."""
    from transformers import GenerationConfig

    from genrec.decode.hf_beam import constrained_beam_search
    from genrec.decode.trie import SidTrie
    from genrec.train.grpo import ConstrainedRollout

    torch.manual_seed(0)
    model, tokenizer, info = build_model(ModelConfig(scratch=ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32)),
                                         sid_vocabulary(SIDS.values()), sid_levels=3)
    trie = SidTrie.from_sid_map(pd.DataFrame({"item_id": list(SIDS), "sid": list(SIDS.values())}), tokenizer)
    ans = tokenizer.convert_tokens_to_ids("<ans>")
    prompts = [[tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["<a_0>", "<b_0>", "<c_0>"]), ans],
               [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(["<a_1>", "<b_1>", "<c_1>"]), ans]]
    group = 4
    batch = torch.tensor([p for p in prompts for _ in range(group)])
    sampling = GenerationConfig(do_sample=True, temperature=1.0, max_new_tokens=4, pad_token_id=trie.eos_token_id)
    rollout = ConstrainedRollout(model, trie, beam_group=group)
    rollout.install()
    try:
        out = model.generate(input_ids=batch, attention_mask=torch.ones_like(batch), generation_config=sampling)
        with pytest.raises(ValueError, match="consecutive rows"):
            model.generate(input_ids=batch.flip(0)[1:5], attention_mask=torch.ones_like(batch[1:5]),
                           generation_config=sampling)
    finally:
        rollout.uninstall()
    assert out.shape == (len(prompts) * group, batch.shape[1] + 4)
    assert (out[:, -1] == trie.eos_token_id).all()  # the SID, then end of sequence
    items = [trie.item_for(row) for row in out[:, batch.shape[1]:batch.shape[1] + 3].tolist()]
    expected = constrained_beam_search(model, prompts, trie, num_beams=group, k=group, batch_size=2)
    assert items == [item for ranked in expected for item, _ in ranked]
    assert len(set(items[:group])) == group and rollout.rollouts == len(prompts) * group and rollout.invalid == 0
