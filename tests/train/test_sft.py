"""SFT stage on a tiny synthetic dataset with a deterministic rule (next item = last item + 1 mod N),
then the `recommend` stage and `genrec eval` on the trained checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genrec.artifacts import RunPaths
from genrec.config import ConfigError
from tiny_runs import RING_ITEMS, RING_USERS, write_ring_run

def sft_config(**extra):
    from genrec.train.sft import SFTConfig

    base = dict(model={"scratch": {"hidden": 64, "layers": 2, "heads": 2, "intermediate": 128}},
                epochs=40, lr=5e-3, batch_size=16, eval_every=60, valid_users=RING_USERS, num_beams=10,
                logging_steps=10, threads=1, warmup=0.0, group_by_length=False)  # 36 users: keep batches mixed
    return SFTConfig.model_validate({**base, **extra})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from genrec.train.sft import run

    run_dir = write_ring_run(tmp_path_factory.mktemp("sft") / "rule")
    run(sft_config(), run_dir)
    return run_dir


def test_sft_learns_the_rule_and_keeps_the_best_checkpoint(trained: Path) -> None:
    manifest = json.loads((RunPaths(trained).stage_dir("sft") / "manifest.json").read_text())
    curve = manifest["metrics"]["valid_curve"]
    assert len(curve) >= 3
    # An untrained model pays about ln 2 + ln 3 + ln 2 nats over the 3 SID tokens (+ EOS), ~0.6 per token;
    # the rule makes every token predictable, so the best validation loss must be far below that.
    assert min(p["loss"] for p in curve) < 0.3
    assert manifest["metrics"]["best_metric"] == max(p["ndcg@10"] for p in curve)
    assert manifest["metrics"]["best_metric"] > 0.9  # the next item is fully determined by the last one
    assert manifest["counts"]["train_history"] == manifest["counts"]["train_examples"] > 0
    curves = json.loads((RunPaths(trained).stage_dir("sft") / "curves.json").read_text())
    assert curves["valid"] == curve and len(curves["train"]) >= 3  # for plots: train loss every logging_steps
    assert all(p["loss"] > 0 and p["step"] > 0 for p in curves["train"])
    ckpt = RunPaths(trained).sft_ckpt
    assert (ckpt / "genrec.json").is_file() and (ckpt / "model.safetensors").is_file()
    assert json.loads((ckpt / "genrec.json").read_text())["sid_levels"] == 3


def test_recommend_writes_valid_recs_and_eval_scores_them(trained: Path) -> None:
    from genrec.decode import RecommendConfig, run
    from genrec.eval import evaluate_file, read_recs

    manifest = run(RecommendConfig(num_beams=20, k=10, system="sft", batch_size=8, threads=1), trained)
    recs = read_recs(RunPaths(trained).recs("sft"), known_items={f"i{i}" for i in range(RING_ITEMS)})
    assert len(recs) == RING_USERS and all(len(items) == 10 == len(set(items)) for items in recs.values())
    assert manifest.counts["users"] == RING_USERS and manifest.metrics["users_per_s"] > 0
    metrics = evaluate_file(RunPaths(trained).recs("sft"), trained)
    assert metrics["hr@5"] > 0.9  # test target = last history item + 1


def test_item_tokens_model_trains_and_recommends(tmp_path: Path) -> None:
    """A scratch model whose prompts carry item tokens beside the SIDs: the stage builds the tokens from the
    sid map's items, the checkpoint records it, and `recommend` builds the same prompts."""
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend
    from genrec.eval import evaluate_file
    from genrec.model.checkpoint import load_checkpoint
    from genrec.train.sft import run

    run_dir = write_ring_run(tmp_path / "items")
    model = {"scratch": {"hidden": 64, "layers": 2, "heads": 2, "intermediate": 128, "item_tokens": True}}
    run(sft_config(model=model), run_dir)
    _, tokenizer, info = load_checkpoint(RunPaths(run_dir).sft_ckpt)
    assert info.item_tokens and tokenizer.convert_tokens_to_ids("<item:i11>") != tokenizer.unk_token_id
    recommend(RecommendConfig(num_beams=20, k=10, system="sft", batch_size=8, threads=1), run_dir)
    assert evaluate_file(RunPaths(run_dir).recs("sft"), run_dir)["hr@5"] > 0.9


def first_code_confidence(run_dir: Path) -> float:
    """Mean probability the checkpoint gives its top first SID token, over the test users' prompts."""
    import torch

    from genrec.data import load_sequences
    from genrec.model.checkpoint import load_checkpoint
    from genrec.model.sources import HistoryPrompts

    model, tokenizer, info = load_checkpoint(RunPaths(run_dir).sft_ckpt)
    prompts = HistoryPrompts.from_run(run_dir, tokenizer, info)
    test = load_sequences(run_dir).query("split == 'test'")
    with torch.no_grad():
        probs = [model(torch.tensor([prompts.ids(h)])).logits[0, -1].softmax(-1).max().item() for h in test["history"]]
    return sum(probs) / len(probs)


def test_label_smoothing_keeps_the_model_from_certainty(trained: Path, tmp_path: Path) -> None:
    """The ring rule makes every next token certain: plain cross-entropy drives the model towards probability 1,
    label smoothing 0.3 caps it (the optimum puts 0.3 of the mass on the other tokens) and still learns the rule."""
    from genrec.decode import RecommendConfig
    from genrec.decode import run as recommend
    from genrec.eval import evaluate_file
    from genrec.train.sft import run

    smoothed = write_ring_run(tmp_path / "smoothed")
    run(sft_config(label_smoothing=0.3), smoothed)
    assert first_code_confidence(trained) > 0.9
    assert first_code_confidence(smoothed) < 0.8
    recommend(RecommendConfig(num_beams=20, k=10, system="sft", batch_size=8, threads=1), smoothed)
    assert evaluate_file(RunPaths(smoothed).recs("sft"), smoothed)["hr@5"] > 0.9


def test_resume_and_bad_inputs(trained: Path, tmp_path: Path) -> None:
    from genrec.decode import RecommendConfig, run

    with pytest.raises(FileNotFoundError, match="genrec.json"):
        run(RecommendConfig(checkpoint=str(tmp_path), k=10), trained)
    with pytest.raises(ConfigError, match="num_beams"):
        from genrec.pipeline import load_run_config

        load_run_config(None, ["recommend.num_beams=5"])
    with pytest.raises(ValueError, match="kind=llm"):
        sft_config(tasks={"alignment": 1.0})


def test_rerun_resumes_from_the_trainer_checkpoint(tmp_path: Path) -> None:
    import shutil

    from genrec.train.sft import run

    run_dir = write_ring_run(tmp_path / "resume")
    tiny = {"scratch": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32}}
    first = run(sft_config(model=tiny, max_steps=4, eval_every=2), run_dir)
    assert first.counts["resumed"] == 0
    checkpoints = sorted(p.name for p in (RunPaths(run_dir).stage_dir("sft") / "trainer").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-4"]
    shutil.rmtree(RunPaths(run_dir).stage_dir("sft") / "trainer" / "checkpoint-4")  # as if killed after step 2
    again = run(sft_config(model=tiny, max_steps=4, eval_every=2), run_dir)
    assert again.counts["resumed"] == 1 and again.counts["steps"] == 4
    assert [p["step"] for p in again.metrics["valid_curve"]] == [2, 4]
    changed = run(sft_config(model=tiny, max_steps=2, eval_every=2), run_dir)  # new config: stale checkpoints dropped
    assert changed.counts["resumed"] == 0 and changed.counts["steps"] == 2
    # same config, new inputs (another SID map): checkpoint-2 was trained on the old SIDs, so it is not resumed
    assert (RunPaths(run_dir).stage_dir("sft") / "trainer" / "checkpoint-2").is_dir()
    sid_map = pd.read_parquet(RunPaths(run_dir).sid_map)
    sid_map.assign(sid=sid_map["sid"].iloc[::-1].to_list()).to_parquet(RunPaths(run_dir).sid_map)
    regenerated = run(sft_config(model=tiny, max_steps=2, eval_every=2), run_dir)
    assert regenerated.counts["resumed"] == 0 and regenerated.counts["steps"] == 2


def test_the_seed_fixes_the_initial_weights_too(tmp_path: Path) -> None:
    """Two runs with one seed save the same weights (the scratch model is built after seeding); another seed
    starts elsewhere."""
    import torch
    from safetensors.torch import load_file

    from genrec.train.sft import run

    tiny = {"scratch": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32}}
    weights = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        run_dir = write_ring_run(tmp_path / name)
        run(sft_config(model=tiny, max_steps=2, eval_every=2, seed=seed), run_dir)
        weights.append(load_file(RunPaths(run_dir).sft_ckpt / "model.safetensors"))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_average_top_saves_the_mean_of_the_best_checkpoints(tmp_path: Path) -> None:
    """`average_top=3` keeps the 3 best checkpoints by validation NDCG@10 (plus the newest, for resuming) and saves
    their element-wise mean; LoRA is refused, as its checkpoints hold adapters only."""
    import torch
    from safetensors.torch import load_file

    from genrec.train.sft import run

    run_dir = write_ring_run(tmp_path / "average")
    tiny = {"scratch": {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32}}
    manifest = run(sft_config(model=tiny, max_steps=12, eval_every=2, average_top=3), run_dir)
    trainer = RunPaths(run_dir).stage_dir("sft") / "trainer"
    by_step = {p["step"]: p["ndcg@10"] for p in manifest.metrics["valid_curve"]}
    best_three = sorted(by_step, key=lambda step: (by_step[step], step), reverse=True)[:3]
    assert manifest.metrics["averaged_checkpoints"] == [f"checkpoint-{step}" for step in best_three]
    kept = {p.name for p in trainer.glob("checkpoint-*")}
    assert kept == {f"checkpoint-{step}" for step in best_three} | {"checkpoint-12"}
    parts = [load_file(trainer / name / "model.safetensors") for name in manifest.metrics["averaged_checkpoints"]]
    saved = load_file(RunPaths(run_dir).sft_ckpt / "model.safetensors")
    for name, tensor in parts[0].items():
        assert torch.allclose(saved[name], sum(part[name] for part in parts) / 3, atol=1e-6), name
    assert not torch.equal(saved[name], parts[0][name])  # not simply the best checkpoint
    with pytest.raises(ValueError, match="LoRA"):
        sft_config(model={"kind": "llm", "lora": {"r": 4}}, average_top=2)


def test_unknown_item_in_sid_map_is_named(tmp_path: Path) -> None:
    from genrec.train.sft import run

    run_dir = write_ring_run(tmp_path / "broken")
    sid_map = pd.read_parquet(RunPaths(run_dir).sid_map).iloc[1:]
    sid_map.to_parquet(RunPaths(run_dir).sid_map)
    with pytest.raises(KeyError, match="'i0' has no SID"):
        run(sft_config(max_steps=1), run_dir)


@pytest.mark.slow
def test_accelerate_launch_starts_and_trains(tmp_path: Path) -> None:
    """The multi-GPU entry point (accelerate launch) runs the same command; here on CPU with one process."""
    import os
    import subprocess
    import sys

    run_dir = write_ring_run(tmp_path / "acc")
    overrides = [f"run_dir={run_dir}", "sft.max_steps=2", "sft.eval_every=2", "sft.valid_users=4", "sft.num_beams=10",
                 "sft.batch_size=8", "sft.threads=1", "sft.model.scratch.hidden=16", "sft.model.scratch.layers=1",
                 "sft.model.scratch.heads=2", "sft.model.scratch.intermediate=32"]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "genrec.cli", "sft"]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((RunPaths(run_dir).stage_dir("sft") / "manifest.json").read_text())
    assert manifest["counts"]["steps"] == 2
    assert (RunPaths(run_dir).sft_ckpt / "model.safetensors").is_file()


def test_llm_kind_with_alignment_and_interest_tasks(tmp_path: Path, tiny_causal_lm: Path) -> None:
    from genrec.model.checkpoint import load_checkpoint
    from genrec.train.sft import run

    run_dir = write_ring_run(tmp_path / "llm")
    labelled = pd.DataFrame({"kind": ["user", "user", "user", "item"], "entity_id": ["u0", "u0", "u1", "i0"],
                             "interest": ["camping", "stove", "camping", "x"], "score": [0.9, 0.8, 0.2, 0.9],
                             "label": [1, 1, 0, 1]})
    RunPaths(run_dir).interests_labelled.parent.mkdir(parents=True)
    labelled.to_parquet(RunPaths(run_dir).interests_labelled)
    config = sft_config(model={"kind": "llm", "base_model": str(tiny_causal_lm), "lora": {"r": 4, "alpha": 8},
                               "titles": True, "interests": True},
                        tasks={"history": 1.0, "alignment": 0.5, "interests": 2.0}, max_steps=2, eval_every=2,
                        valid_users=4, batch_size=8)
    manifest = run(config, run_dir)
    assert manifest.counts["train_alignment"] == RING_ITEMS  # half of 2 x 12 (title -> SID, SID -> title)
    u0_items = len(make_history(run_dir, "u0"))
    assert manifest.counts["train_interests"] == 2 * u0_items  # only u0 has curated (label 1) interests
    model, tokenizer, info = load_checkpoint(RunPaths(run_dir).sft_ckpt)
    assert info.kind == "llm" and info.interests and info.titles
    assert "<a_0>" in tokenizer.get_vocab() and model.config.vocab_size >= len(tokenizer)


def make_history(run_dir: Path, user: str) -> list[str]:
    """The user's training items (the valid row's history)."""
    from genrec.data import load_sequences

    seq = load_sequences(run_dir)
    return list(seq[(seq["user_id"] == user) & (seq["split"] == "valid")]["history"].iloc[0])


def test_distillation_alone_teaches_what_the_teacher_knows(trained: Path, tmp_path: Path) -> None:
    """weight=1: the student never sees a label, only its teacher's next-token distribution. From the trained
    teacher it learns the ring rule; from an untrained teacher (same vocabulary) it does not — so the rule comes
    through the teacher, not through leaked labels. The teacher's weights are a hashed input of the stage."""
    from genrec.model.config import ScratchConfig
    from genrec.train.sft import run
    from tiny_runs import save_random_checkpoint

    teacher = RunPaths(trained).sft_ckpt
    learned = run(sft_config(distill={"teachers": [str(teacher)], "weight": 1.0}), write_ring_run(tmp_path / "good"))
    assert learned.metrics["best_metric"] > 0.9
    assert str(teacher / "model.safetensors") in learned.inputs

    random_run = write_ring_run(tmp_path / "random")
    untrained = save_random_checkpoint(pd.read_parquet(RunPaths(random_run).sid_map), tmp_path / "untrained",
                                       ScratchConfig(hidden=64, layers=2, heads=2, intermediate=128))
    copied = run(sft_config(distill={"teachers": [str(untrained)], "weight": 1.0}), random_run)
    assert copied.metrics["best_metric"] < 0.6
