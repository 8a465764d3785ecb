"""SASRec learns a deterministic next-item rule, returns valid top-k lists, and is reproducible."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from genrec.baselines.config import SASRecConfig
from genrec.baselines.mostpop import most_popular
from genrec.baselines.sasrec import (SASRec, ensemble_recommend, fit_and_recommend, load_sasrec, top_items,
                                     training_windows)
from genrec.data.split import leave_one_out
from genrec.eval.metrics import topk_metrics

N_ITEMS = 40
CFG = SASRecConfig(hidden=32, layers=1, heads=2, dropout=0.1, lr=5e-3, batch_size=64, epochs=40, patience=10,
                   eval_every=2, seed=7, threads=1)


def _dataset(users: int = 160, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every user walks the item cycle i -> i+1 (mod N_ITEMS) from a random start, 5-9 steps."""
    rng = random.Random(seed)
    raw = {}
    for u in range(users):
        start, length = rng.randrange(N_ITEMS), rng.randint(5, 9)
        raw[f"u{u}"] = [f"i{(start + t) % N_ITEMS}" for t in range(length)]
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(N_ITEMS)]})
    return items, leave_one_out(raw, max_history=20)


def _test_targets(sequences: pd.DataFrame) -> dict[str, str]:
    test = sequences[sequences["split"] == "test"]
    return dict(zip(test["user_id"], test["target"], strict=True))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    items, sequences = _dataset()
    out = tmp_path_factory.mktemp("sasrec")
    return items, sequences, out, fit_and_recommend(CFG, items, sequences, 10, out)


def test_learns_next_item_rule_far_above_mostpop(fitted) -> None:
    _, sequences, _, result = fitted
    targets = _test_targets(sequences)
    pop = most_popular(sequences, 10)
    mostpop = topk_metrics({u: pop for u in targets}, targets)
    sasrec = topk_metrics(result.recs, targets)
    assert sasrec["hr@10"] >= 0.9
    assert sasrec["hr@10"] > mostpop["hr@10"] + 0.5
    assert sasrec["ndcg@10"] > 0.5


def test_outputs_are_valid(fitted) -> None:
    items, sequences, out, result = fitted
    assert set(result.recs) == set(_test_targets(sequences))
    known = set(items["item_id"])
    for recs in result.recs.values():
        assert len(recs) == 10 and len(set(recs)) == 10 and set(recs) <= known
    summary = result.summary
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= CFG.epochs
    assert summary["best_valid_ndcg@10"] > 0.5
    saved = torch.load(out / "model.pt", weights_only=False)
    assert saved["item_ids"] == list(items["item_id"])
    model = SASRec(N_ITEMS, CFG)
    model.load_state_dict(saved["state_dict"])


def test_same_seed_same_recommendations(fitted, tmp_path: Path) -> None:
    items, sequences, _, first = fitted
    again = fit_and_recommend(CFG, items, sequences, 10, tmp_path)
    assert again.recs == first.recs
    assert again.summary["history"] == first.summary["history"]


def test_seed_ensemble_ranks_by_the_mean_log_prob_and_one_model_ranks_as_itself(fitted, tmp_path: Path) -> None:
    items, sequences, out, first = fitted
    # the same model twice is that model: its own test lists
    assert ensemble_recommend([out / "model.pt", out / "model.pt"], sequences, 10) == first.recs
    # a barely trained second seed differs; together they rank by the mean of the two log-softmaxes
    short = CFG.model_copy(update={"seed": 8, "epochs": 2})
    fit_and_recommend(short, items, sequences, 10, tmp_path)
    together = ensemble_recommend([out / "model.pt", tmp_path / "model.pt"], sequences, 10)
    (one, item_ids), (two, _) = load_sasrec(out / "model.pt"), load_sasrec(tmp_path / "model.pt")
    test = sequences[sequences["split"] == "test"]
    history = torch.tensor([[0] * (CFG.max_len - len(h)) + [item_ids.index(i) + 1 for i in h]
                            for h in test["history"]])
    with torch.no_grad():
        mean = sum(m.logits(m(history)[:, -1]).log_softmax(dim=1) for m in (one, two)) / 2
    by_hand = {user: [item_ids[i] for i in row] for user, row in zip(test["user_id"], mean.topk(10).indices.tolist(),
                                                                      strict=True)}
    assert together == by_hand and together != first.recs
    assert (top_items(one, history, 10) - 1).tolist() == [[item_ids.index(i) for i in first.recs[u]]
                                                          for u in test["user_id"]]


def test_ensemble_members_must_share_the_item_table(fitted, tmp_path: Path) -> None:
    items, sequences, out, _ = fitted
    reordered = items.iloc[::-1].reset_index(drop=True)  # same items, another order: another table
    fit_and_recommend(CFG.model_copy(update={"epochs": 2}), reordered, sequences, 10, tmp_path)
    with pytest.raises(ValueError, match="another item table"):
        ensemble_recommend([out / "model.pt", tmp_path / "model.pt"], sequences, 10)


def test_distilling_alone_passes_on_what_the_teachers_know(fitted, tmp_path: Path) -> None:
    """weight=1: the student never sees a label, only its teachers' mean distribution over the items. From the
    trained SASRec it learns the cycle; from a 1-epoch teacher it does not; a teacher on another item table is
    refused by name."""
    from genrec.config import DistillConfig

    items, sequences, out, _ = fitted
    targets = _test_targets(sequences)
    alone = DistillConfig(teachers=[out / "model.pt"], weight=1.0)
    student = fit_and_recommend(CFG.model_copy(update={"seed": 9, "distill": alone}), items, sequences, 10,
                                tmp_path / "student")
    assert topk_metrics(student.recs, targets)["hr@10"] >= 0.9
    assert load_sasrec(tmp_path / "student" / "model.pt")[0] is not None  # the config (with paths) reloads

    fit_and_recommend(CFG.model_copy(update={"seed": 8, "epochs": 1, "eval_every": 1}), items, sequences, 10,
                      tmp_path / "weak")
    weak = DistillConfig(teachers=[tmp_path / "weak" / "model.pt"], weight=1.0)
    copied = fit_and_recommend(CFG.model_copy(update={"seed": 9, "distill": weak}), items, sequences, 10,
                               tmp_path / "copied")
    assert topk_metrics(copied.recs, targets)["hr@10"] < 0.6

    reordered = items.iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError, match="another item table"):
        fit_and_recommend(CFG.model_copy(update={"distill": alone}), reordered, sequences, 10, tmp_path / "bad")


def test_training_windows_cover_every_training_target_once() -> None:
    raw = {"long": [f"i{j}" for j in range(25)], "short": ["i0", "i1", "i2"], "mid": ["i25", "i26", "i27", "i28"]}
    sequences = leave_one_out(raw, max_history=20)
    windows = training_windows(sequences, {f"i{j}": j + 1 for j in range(30)}, max_len=4)
    assert windows.shape[1] == 5
    inputs, targets = windows[:, :-1], windows[:, 1:]
    targets = sorted(targets[inputs != 0].tolist())
    # long: training items i0..i22 -> targets i1..i22; mid: i25,i26 -> target i26; short: i0 alone -> none
    assert targets == sorted([j + 1 for j in range(1, 23)] + [27])
    # the valid/test targets of "long" (i23, i24) and "mid" (i27, i28) never appear in training windows
    assert not {24, 25, 28, 29} & set(windows.flatten().tolist())


def test_unknown_item_is_a_clear_error(tmp_path: Path) -> None:
    items, sequences = _dataset(users=10)
    with pytest.raises(ValueError, match="not in items.parquet"):
        fit_and_recommend(CFG, items[items["item_id"] != "i3"], sequences, 10, tmp_path)


def test_killed_run_resumes_to_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import genrec.baselines.sasrec as sasrec

    items, sequences = _dataset(users=60)
    cfg = CFG.model_copy(update={"epochs": 8, "patience": 8})
    whole = fit_and_recommend(cfg, items, sequences, 10, tmp_path / "whole")

    real_epoch, calls = sasrec._train_epoch, []

    def dies_in_epoch_5(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(sasrec, "_train_epoch", dies_in_epoch_5)
    with pytest.raises(KeyboardInterrupt):
        fit_and_recommend(cfg, items, sequences, 10, tmp_path / "resumed")
    monkeypatch.setattr(sasrec, "_train_epoch", real_epoch)
    # cut short at the last evaluation (epoch 4): finishes from the checkpoint without training further
    cut = fit_and_recommend(cfg.model_copy(update={"epochs": 4}), items, sequences, 10, tmp_path / "resumed")
    assert cut.summary["epochs_run"] == 4 and cut.summary["history"] == whole.summary["history"][:2]
    # or carried on to the full schedule: the same result as the uninterrupted run
    resumed = fit_and_recommend(cfg, items, sequences, 10, tmp_path / "resumed")
    assert resumed.summary["resumed_from_epoch"] == 4
    assert resumed.summary["history"] == whole.summary["history"]
    assert resumed.recs == whole.recs
    # a different config does not resume from that checkpoint
    other = fit_and_recommend(cfg.model_copy(update={"lr": 1e-3}), items, sequences, 10, tmp_path / "resumed")
    assert other.summary["resumed_from_epoch"] == 0
