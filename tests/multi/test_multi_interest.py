"""Multi-interest retrievers: shapes, merge rules, determinism, the dictionary keeping two tastes apart,
the category pointer copying a seen category, long histories without leakage, and the stage end to end."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch

from genrec.data.split import leave_one_out
from genrec.data.tensors import item_index
from genrec.eval import evaluate_file
from genrec.multi import MultiConfig, recommend, run
from genrec.multi.base import pairwise_cosine
from genrec.multi.config import BaseConfig, DMIConfig, GemiRecConfig, ULIMConfig
from genrec.multi.data import build_examples
from genrec.multi.merge import merge
from genrec.multi.train import ModelInputs, build_model, fit, retrieve_all

SMALL = {"hidden": 16, "dropout": 0.0, "batch_size": 64, "lr": 1e-2, "eval_every": 5, "threads": 1}


def _frames(raw: dict[str, list[str]], categories: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = sorted(categories)
    items = pd.DataFrame({"item_id": ids, "categories": [categories[i] for i in ids]})
    return items, leave_one_out(raw, max_history=20)


def _two_tastes(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """Items a0..a9 and b0..b9; a third of the users buy only a*, a third only b*, a third alternate a, b."""
    rng = random.Random(seed)
    group = {f"{g}{j}": g for g in "ab" for j in range(10)}
    raw, mixed = {}, set()
    for u in range(150):
        kind = ("a", "b", "ab")[u % 3]
        raw[f"u{u}"] = [f"{kind[t % len(kind)]}{rng.randrange(10)}" for t in range(8)]
        if kind == "ab":
            mixed.add(f"u{u}")
    items, sequences = _frames(raw, group)
    return items, sequences, mixed


def _inputs(items: pd.DataFrame, codes: torch.Tensor | None = None) -> ModelInputs:
    cats = {name: i + 1 for i, name in enumerate(sorted(set(items["categories"])))}
    return ModelInputs(items["item_id"].tolist(), torch.tensor([cats[c] for c in items["categories"]]), codes)


def _fit(cfg, items: pd.DataFrame, sequences: pd.DataFrame, out: Path, codes: torch.Tensor | None = None):
    split = build_examples(sequences, item_index(items), cfg.max_len)
    result = fit(cfg, _inputs(items, codes), split.train.histories, split.train.targets, split.valid.histories,
                 split.valid.targets, "max_score", out)
    return result, split


@pytest.mark.parametrize("cfg", [BaseConfig(interests=3, **SMALL), BaseConfig(interests=3, extractor="routing", **SMALL),
                                 GemiRecConfig(interests=3, dictionary_size=5, **SMALL), ULIMConfig(interests=3, **SMALL),
                                 DMIConfig(interests=3, steps=2, **SMALL)])
def test_retrieval_shapes(cfg) -> None:
    items, sequences, _ = _two_tastes()
    model = build_model(cfg, _inputs(items))
    model.eval()
    seq = torch.tensor([[0, 0, 1, 12, 3], [4, 5, 6, 7, 8]])
    out = model.retrieve(seq)
    k = 2 if cfg.model == "ulim" else 3  # ULIM retrieves in at most as many categories as exist (2 here)
    assert out.vectors.shape == (2, k, 16)
    assert out.scores.shape == (2, k, 20)
    assert torch.allclose(out.weights.sum(1), torch.ones(2))
    loss = model.loss(seq, torch.tensor([2, 9]), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()


def test_merge_rules() -> None:
    scores = torch.tensor([[[9.0, 8.0, 7.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0, 2.0, 1.0]]])
    assert merge(scores, torch.tensor([[0.5, 0.5]]), "max_score", 4).tolist() == [[0, 1, 2, 3]]
    assert merge(scores, torch.tensor([[0.5, 0.5]]), "round_robin", 4).tolist() == [[0, 3, 1, 4]]
    # interest 1 weighs 3x interest 0: it fills three of the first four slots
    assert merge(scores, torch.tensor([[0.25, 0.75]]), "weighted", 4).tolist() == [[3, 4, 0, 5]]
    duplicate = torch.tensor([[[5.0, 4.0, 0.0], [5.0, 0.0, 4.0]]])
    assert merge(duplicate, torch.ones(1, 2), "round_robin", 3).tolist() == [[0, 2, 1]]  # no item twice
    with pytest.raises(ValueError, match="unknown merge rule 'best'"):
        merge(scores, torch.ones(1, 2), "best", 4)


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    items, sequences, _ = _two_tastes()
    cfg = DMIConfig(interests=2, epochs=5, **SMALL)
    first, split = _fit(cfg, items, sequences, tmp_path / "one")
    second, _ = _fit(cfg, items, sequences, tmp_path / "two")
    assert first.summary["history"] == second.summary["history"]
    top1, _ = retrieve_all(first.model, split.test.histories, "weighted", 10)
    top2, _ = retrieve_all(second.model, split.test.histories, "weighted", 10)
    assert torch.equal(top1, top2)


@pytest.mark.parametrize("seeded", [False, True])
def test_dictionary_keeps_a_two_taste_users_interests_apart(tmp_path: Path, seeded: bool) -> None:
    """Learned dictionary: the two interests' lists lean to different tastes; a dictionary seeded with one
    code per taste (what mined interests give) makes every list pure."""
    items, sequences, mixed = _two_tastes()
    group = items["categories"].tolist()
    codes = torch.tensor([0 if g == "a" else 1 for g in group]) if seeded else None
    cfg = GemiRecConfig(interests=2, dictionary_size=2, epochs=20, patience=4, **SMALL)
    result, split = _fit(cfg, items, sequences, tmp_path, codes)
    rows = [i for i, u in enumerate(split.test.users) if u in mixed]
    with torch.no_grad():
        out = result.model.eval().retrieve(split.test.histories[rows])
    differ = pure = 0
    for per_interest in out.scores.topk(5, dim=2).indices.tolist():
        tastes = [[group[c] for c in top] for top in per_interest]
        majority = [Counter(t).most_common(1)[0][0] for t in tastes]
        differ += majority[0] != majority[1]
        pure += majority[0] != majority[1] and all(len(set(t)) == 1 for t in tastes)
    assert differ / len(rows) >= 0.9
    assert float(pairwise_cosine(out.vectors).mean()) < 0.0
    if seeded:
        assert pure / len(rows) >= 0.9


def _category_walks(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """30 categories of 3 items; each user draws 3 categories and buys only inside them."""
    rng = random.Random(seed)
    cats = {f"c{c}_{j}": f"c{c}" for c in range(30) for j in range(3)}
    raw = {}
    for u in range(200):
        mine = rng.sample(range(30), 3)
        raw[f"u{u}"] = [f"c{rng.choice(mine)}_{rng.randrange(3)}" for _ in range(9)]
    return _frames(raw, cats)


def test_category_pointer_copies_a_category_it_saw(tmp_path: Path) -> None:
    items, sequences = _category_walks()
    model = build_model(ULIMConfig(interests=3, **SMALL), _inputs(items)).eval()
    torch.nn.init.constant_(model.switch.bias, -50.0)  # p_gen ~ 0: the copy distribution alone
    seq = torch.tensor([[0, 1, 2, 40, 41]])  # items of categories c0 (rows 1..3) and c21 (rows 40, 41)
    with torch.no_grad():
        h, mask, cats, state = model.encode(seq)
        probs = model.category_probs(h, mask, cats, state)[0]
    seen = set(cats[0][mask[0]].tolist())
    assert {int(c) + 1 for c in torch.nonzero(probs > 1e-6).flatten()} == seen

    cfg = ULIMConfig(interests=3, epochs=15, patience=3, **SMALL)
    result, split = _fit(cfg, items, sequences, tmp_path)
    model = result.model.eval()
    with torch.no_grad():
        h, mask, cats, state = model.encode(split.test.histories)
        top = model.category_probs(h, mask, cats, state).argmax(1) + 1
    copied = [int(t) in set(c[m].tolist()) for t, c, m in zip(top, cats, mask, strict=True)]
    assert sum(copied) / len(copied) >= 0.9


def test_long_histories_reach_back_past_20_without_leaking(tmp_path: Path) -> None:
    raw = {"long": [f"i{j}" for j in range(40)], "short": ["i0", "i1", "i2", "i3"]}
    items, sequences = _frames(raw, {f"i{j}": "x" for j in range(40)})
    index = item_index(items)
    split = build_examples(sequences, index, max_len=64)
    user = split.test.users.index("long")
    assert int((split.test.histories[user] > 0).sum()) == 39  # all 38 training items + the valid target
    assert int((split.valid.histories[user] > 0).sum()) == 38
    assert not {index["i38"], index["i39"]} & set(split.train.targets.tolist())  # valid/test targets unseen in training
    short20 = build_examples(sequences, index, max_len=20)
    assert short20.test.histories.shape[1] == 20


def test_ulim_ignores_extra_left_padding() -> None:
    """ULIM drops all-padding columns before encoding; a batch padded to 30 scores as one padded to 5."""
    items, _, _ = _two_tastes()
    model = build_model(ULIMConfig(interests=2, max_len=32, **SMALL), _inputs(items)).eval()
    seq = torch.tensor([[0, 0, 1, 12, 3], [4, 5, 6, 7, 8]])
    padded = torch.cat([torch.zeros(2, 25, dtype=torch.int64), seq], dim=1)
    short, long = model.retrieve(seq), model.retrieve(padded)
    assert torch.allclose(short.scores, long.scores, atol=1e-5)
    assert torch.allclose(short.weights, long.weights, atol=1e-6)


def _write_run(run_dir: Path, items: pd.DataFrame, sequences: pd.DataFrame) -> None:
    (run_dir / "data").mkdir(parents=True)
    items.to_parquet(run_dir / "data" / "items.parquet", index=False)
    sequences.to_parquet(run_dir / "data" / "sequences.parquet", index=False)


def test_stage_writes_recs_from_sid_categories_and_reranks(tmp_path: Path) -> None:
    items, sequences, _ = _two_tastes()
    _write_run(tmp_path, items.assign(categories=""), sequences)
    sid = pd.DataFrame({"item_id": items["item_id"], "codes": [[0 if i.startswith("a") else 1, j] for j, i in enumerate(items["item_id"])]})
    config = MultiConfig.model_validate({"model": {"model": "ulim", "epochs": 2, **SMALL}, "k": 10})
    with pytest.raises(FileNotFoundError, match="sid_map"):
        run(config, tmp_path)
    (tmp_path / "sid").mkdir()
    sid.to_parquet(tmp_path / "sid" / "sid_map.parquet", index=False)
    manifest = run(config, tmp_path)
    assert manifest.metrics["category_source"] == "sid" and manifest.counts["categories"] == 2
    assert (tmp_path / "multi" / "multi_ulim" / "model.pt").is_file()
    metrics = evaluate_file(tmp_path / "eval" / "multi_ulim" / "recs.jsonl", tmp_path)
    assert metrics["covered_users"] == 150
    again = recommend(config.model_copy(update={"merge": "round_robin"}), tmp_path)
    assert again.counts["users"] == 150 and again.metrics["merge"] == "round_robin"


def test_a_killed_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    items, sequences, _ = _two_tastes()
    cfg = GemiRecConfig(interests=2, dictionary_size=4, epochs=10, patience=2, **SMALL)
    whole, split = _fit(cfg, items, sequences, tmp_path / "whole")
    _fit(cfg.model_copy(update={"epochs": 5}), items, sequences, tmp_path / "cut")  # "killed" after epoch 5
    resumed, _ = _fit(cfg, items, sequences, tmp_path / "cut")
    assert resumed.summary["resumed_from_epoch"] == 5
    assert resumed.summary["history"] == whole.summary["history"]


@pytest.mark.slow  # loads the MiniLM sentence encoder
def test_seeded_dictionary_groups_items_by_their_mined_interests(tmp_path: Path) -> None:
    from genrec.multi.seeding import seed_codes

    themes = {"i0": "camping in the mountains", "i1": "hiking and camping outdoors", "i2": "outdoor camping trips",
              "i3": "baking bread in the kitchen", "i4": "cooking dinner at home", "i5": "kitchen baking and cooking"}
    rows = [{"kind": "item", "entity_id": item, "interest": text, "agreement": 1} for item, text in themes.items()]
    (tmp_path / "mine").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "mine" / "interests.parquet", index=False)
    cfg = GemiRecConfig(dictionary_size=2, seed_interests="auto")
    seeding = seed_codes(cfg, tmp_path, ["i0", "i1", "i2", "i3", "i4", "i5", "i6"])
    codes = seeding.item_codes.tolist()
    assert codes[6] == -1  # no mined interest: the learned nearest code decides
    assert len({codes[0], codes[1], codes[2]}) == 1 and len({codes[3], codes[4], codes[5]}) == 1
    assert codes[0] != codes[3]
    assert len(seeding.names) == 2 and seeding.source == "mined"
    with pytest.raises(ValueError, match="fewer than dictionary_size"):
        seed_codes(cfg.model_copy(update={"dictionary_size": 7}), tmp_path, ["i0", "i1", "i2", "i3", "i4", "i5", "i6"])
