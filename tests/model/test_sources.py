"""`HistoryPrompts`: the one place history item ids become prompt ids (SIDs, titles, a user's curated interests)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import write_labelled_interests, write_sid_map

from genrec.artifacts import RunPaths
from genrec.model import ModelConfig, build_model, sid_vocabulary
from genrec.model.prompt import build_prompt_ids
from genrec.model.sources import HistoryPrompts


def _tiny_run(root: Path) -> tuple[RunPaths, pd.DataFrame]:
    """Three items with titles, their SIDs, and curated interests of user "u1" (one of them rejected, label 0)."""
    paths = RunPaths(root)
    sid_map = write_sid_map(paths, [(0, 1, 2), (1, 0, 2), (2, 2, 0)])
    paths.items.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": ["0", "1", "2"], "title": ["camping stove", None, "item"]}).to_parquet(paths.items)
    write_labelled_interests(paths, [("user", "u1", "camping", 0.9, 1), ("user", "u1", "stove", 0.2, 0),
                                     ("user", "u1", "item", 0.6, 1)])
    return paths, sid_map


def test_llm_prompts_carry_sids_titles_and_the_users_curated_interests(tmp_path: Path, tiny_causal_lm: Path) -> None:
    paths, sid_map = _tiny_run(tmp_path / "run")
    config = ModelConfig(kind="llm", base_model=str(tiny_causal_lm), titles=True, interests=True)
    _, tokenizer, info = build_model(config, sid_vocabulary(sid_map["sid"]), sid_levels=3)
    prompts = HistoryPrompts.from_run(paths.root, tokenizer, info)

    sids = dict(zip(sid_map["item_id"], sid_map["sid"], strict=True))
    expected = build_prompt_ids(tokenizer, info, [sids["2"], sids["0"]], interests=["camping", "item"],
                                titles=["item", "camping stove"])
    assert prompts.for_user("u1", ["2", "0"]) == expected  # label-0 interest left out, best score first
    assert prompts.for_user("u2", ["2", "0"]) == prompts.ids(["2", "0"])  # no curated interests: none in the prompt
    assert prompts.ids([1]) == build_prompt_ids(tokenizer, info, [sids["1"]], titles=[""])  # int ids, missing title

    _, tokenizer, info = build_model(config, sid_vocabulary(sid_map["sid"]), sid_levels=3, max_interests=1)
    fewer = HistoryPrompts.from_run(paths.root, tokenizer, info)  # as many interests as the checkpoint was trained with
    assert fewer.interests == {"u1": ["camping"]}


def test_interests_are_read_only_for_checkpoints_that_use_them(tmp_path: Path) -> None:
    paths, sid_map = _tiny_run(tmp_path / "run")
    _, tokenizer, info = build_model(ModelConfig(kind="scratch"), sid_vocabulary(sid_map["sid"]), sid_levels=3)
    paths.interests_labelled.unlink()  # a scratch checkpoint must not need the label stage's output
    prompts = HistoryPrompts.from_run(paths.root, tokenizer, info)
    assert prompts.interests == {}
    assert prompts.for_user("u1", ["0"]) == build_prompt_ids(tokenizer, info, [sid_map["sid"].iloc[0]])


def test_an_item_without_a_sid_is_named(tmp_path: Path) -> None:
    paths, sid_map = _tiny_run(tmp_path / "run")
    _, tokenizer, info = build_model(ModelConfig(kind="scratch"), sid_vocabulary(sid_map["sid"]), sid_levels=3)
    with pytest.raises(KeyError, match="'99' has no SID"):
        HistoryPrompts.from_run(paths.root, tokenizer, info).ids(["0", "99"])
