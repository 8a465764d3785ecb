"""The `recommend` stage: top-k items for every test user (history = the test row's history) by
constrained beam search over one or more checkpoints, each written to `eval/<system>/recs.jsonl` with
its scores."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

from genrec.artifacts import Manifest, RunPaths, stage_run
from genrec.decode.config import RecommendConfig, RecommendTarget


def checkpoint_path(checkpoint: str, run_dir: Path) -> Path:
    """`sft` / `grpo` name the run's own checkpoints; anything else is a folder path."""
    paths = RunPaths(Path(run_dir))
    return {"sft": paths.sft_ckpt, "grpo": paths.grpo_ckpt}.get(checkpoint, Path(checkpoint))


def _uses_interests(ckpt: Path) -> bool:
    import json

    info = ckpt / "genrec.json"
    return info.is_file() and bool(json.loads(info.read_text()).get("interests"))


def inputs(config: RecommendConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    ckpts = [checkpoint_path(t.checkpoint, run_dir) for t in config.targets()]
    needed = [paths.sequences, paths.items, paths.sid_map, *ckpts]
    if config.decoding == "interest":
        from genrec.decode.interest_sources import source_inputs

        needed += source_inputs(config.interest_source, run_dir, config.interest_model)
    return needed + [paths.interests_labelled] if any(map(_uses_interests, ckpts)) else needed


def _recommend(config: RecommendConfig, target: RecommendTarget, run_dir: Path) -> dict:
    """Rank items for every test user with one checkpoint; writes its recs.jsonl, returns its metrics."""
    from genrec.data import load_items, load_sequences
    from genrec.decode.trie import SidTrie
    from genrec.eval.recs import write_recs
    from genrec.model.checkpoint import load_checkpoint
    from genrec.model.sources import HistoryPrompts, read_sid_map
    from genrec.progress import progress_bar

    paths = RunPaths(Path(run_dir))
    ckpt = checkpoint_path(target.checkpoint, run_dir)
    if config.engine == "vllm":  # the engine loads the weights; only the tokenizer and prompt info here
        from transformers import AutoTokenizer

        from genrec.model.checkpoint import load_info

        model, tokenizer, info = None, AutoTokenizer.from_pretrained(ckpt), load_info(ckpt)
    else:
        model, tokenizer, info = load_checkpoint(ckpt)
    sid_map = read_sid_map(paths.sid_map)
    items = load_items(run_dir)
    prompter = HistoryPrompts.from_run(run_dir, tokenizer, info, sid_map, items)
    trie = SidTrie.from_sid_map(sid_map[sid_map["item_id"].isin(set(items["item_id"]))], tokenizer)
    test = load_sequences(run_dir).query("split == 'test'")
    if config.max_users is not None:
        test = test.head(config.max_users)
    users = list(test["user_id"])

    histories = {u: [str(i) for i in h] for u, h in zip(users, test["history"], strict=True)}
    prompts = [prompter.for_user(u, histories[u]) for u in users]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths batch together
    search, source_counts = _searcher(config, run_dir, model, ckpt, trie, tokenizer, sid_map, histories, info,
                                      prompter.ids)
    ranked: dict[str, list[tuple[str, float]]] = {}
    explained: dict[str, list[str]] = {}
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(f"recommend ({target.system})", total=len(users), status="")
        for first in range(0, len(order), config.batch_size):
            chunk = order[first:first + config.batch_size]
            results, why = search([prompts[i] for i in chunk], [users[i] for i in chunk])
            ranked.update({users[i]: r for i, r in zip(chunk, results, strict=True)})
            explained.update({users[i]: w for i, w in zip(chunk, why, strict=True) if w is not None})
            bar.advance(task, len(chunk))
    wall = time.perf_counter() - start
    extra = {u: {"scores": [round(s, 4) for _, s in r], **({"interests": explained[u]} if u in explained else {})}
             for u, r in ranked.items()}
    written = write_recs(paths.recs(target.system), ((u, [i for i, _ in ranked[u]]) for u in users), extra)
    return dict(users=written, short_lists=sum(1 for r in ranked.values() if len(r) < config.k),
                users_per_s=round(len(users) / wall, 3), search_wall_s=round(wall, 2), checkpoint=str(ckpt),
                model_kind=info.kind, engine=config.engine, num_beams=config.num_beams, k=config.k,
                decoding=config.decoding, **source_counts)


Searcher = Callable[[list[list[int]], list[str]], tuple[list[list[tuple[str, float]]], list[list[str] | None]]]


def _searcher(config: RecommendConfig, run_dir: Path, model, ckpt: Path, trie, tokenizer, sid_map,
              histories: dict[str, list[str]], info, prompt_for) -> tuple[Searcher, dict]:
    """(prompts, their users) -> (ranked items with scores, the interest of each item or None), per the
    configured engine and decoding; plus the interest source's counts for the manifest. `histories`: every
    user's history as in their prompt (what an interest source may read); `info`, `prompt_for`: the
    checkpoint's prompt info and builder (for prompt-conditioned interests)."""
    from genrec.decode.hf_beam import constrained_beam_search, interest_beam_search

    if config.engine == "vllm":
        from genrec.decode.vllm_beam import VllmBeamSearch

        engine = VllmBeamSearch.from_checkpoint(ckpt, trie, enforce_eager=config.enforce_eager)
        beam, interest = engine.search, engine.search_interest
    else:
        beam = functools.partial(constrained_beam_search, model, trie=trie, batch_size=config.batch_size)
        interest = functools.partial(interest_beam_search, model, trie=trie, batch_size=config.batch_size)
    if config.decoding == "beam":
        def plain(prompts: list[list[int]], batch: list[str]):
            return beam(prompts, num_beams=config.num_beams, k=config.k), [None] * len(prompts)

        return plain, {}
    from genrec.decode.interest_sources import interest_selector

    catalogue = sid_map[sid_map["item_id"].isin(set(trie.item_ids))]
    select_for, counts = interest_selector(config.interest_source, config.num_interests, config.num_beams, run_dir,
                                           catalogue, tokenizer, list(histories), config.threads, config.interest_model,
                                           info, prompt_for)

    def grouped(prompts: list[list[int]], batch: list[str]):
        select = select_for(batch, [histories[u] for u in batch], config.k)
        recs = interest(prompts, num_beams=config.num_beams, k=config.k, select=select, rule=config.merge_rule())
        return [[(r.item, r.score) for r in rs] for rs in recs], [[r.interest for r in rs] for rs in recs]

    counts = dict(interest_source=config.interest_source, num_interests=config.num_interests,
                  interest_order=config.interest_order, **counts)
    if config.interest_order == "coverage":
        counts["coverage_penalty"] = config.coverage_penalty
    if config.interest_source == "gemirec":
        counts["interest_model"] = config.interest_model
    return grouped, counts


def run(config: RecommendConfig, run_dir: Path) -> Manifest:
    """Recommend for every test user with every configured checkpoint; 100% of returned items are catalogue
    items with a SID. The manifest's top-level metrics are the main system's; `systems` holds each one's."""
    import torch

    paths = RunPaths(Path(run_dir))
    with stage_run("recommend", config, paths.stage_dir("recommend"), inputs(config, run_dir)) as manifest:
        torch.set_num_threads(config.threads)
        per_system = {}
        for target in config.targets():
            metrics = _recommend(config, target, run_dir)
            manifest.outputs.append(str(paths.recs(target.system)))
            manifest.counts["users"] = metrics.pop("users")
            manifest.counts["short_lists"] = manifest.counts.get("short_lists", 0) + metrics.pop("short_lists")
            per_system[target.system] = metrics
        manifest.metrics.update(per_system[config.system], systems=per_system)
    return manifest
