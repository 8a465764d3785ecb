"""Each GRPO reward term on hand-made completions (token ids chosen by hand, no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genrec.train.rewards import (SidCatalog, item_context, make_exact_hit, make_interest_reward,
                                  make_invalid_penalty, make_rank_penalty, make_sid_prefix, prefix_share,
                                  rank_penalties)

EOS, PAD = 0, 1
# three levels: a-tokens 10.., b-tokens 20.., c-tokens 30..
SIDS = {"x": (10, 20, 30), "y": (10, 20, 31), "z": (10, 21, 30), "w": (11, 20, 30)}


@pytest.fixture
def catalog() -> SidCatalog:
    return SidCatalog.build(SIDS, stop_ids=[EOS, PAD])


def call(func, completion_ids, **columns):
    n = len(completion_ids)
    return func(prompts=columns.pop("prompts", ["p"] * n), completions=[""] * n, completion_ids=completion_ids, **columns)


def test_catalog_parses_completions(catalog):
    assert catalog.item_of([10, 20, 31, EOS]) == "y"
    assert catalog.item_of([10, 20, 31]) == "y"
    assert catalog.item_of([10, 20, 31, EOS, PAD]) == "y"
    assert catalog.item_of([10, 20]) is None
    assert catalog.item_of([10, 20, 32, EOS]) is None
    assert catalog.item_of([10, 20, 30, 31]) is None


def test_catalog_rejects_duplicate_sids():
    with pytest.raises(ValueError, match="not unique"):
        SidCatalog.build({"a": (1, 2), "b": (1, 2)}, stop_ids=[EOS])


def test_exact_hit(catalog):
    out = call(make_exact_hit(catalog), [[10, 20, 30, EOS], [10, 20, 31, EOS], [10, 99, EOS]], target=["x", "x", "x"])
    assert out == [1.0, 0.0, 0.0]
    assert make_exact_hit(catalog).__name__ == "exact_hit"


def test_prefix_share_counts_only_leading_levels():
    assert prefix_share((10, 20, 30), (10, 20, 30)) == 1.0
    assert prefix_share((10, 20, 31), (10, 20, 30)) == pytest.approx(2 / 3)
    assert prefix_share((10, 21, 30), (10, 20, 30)) == pytest.approx(1 / 3)  # level 3 matches but not level 2
    assert prefix_share((11, 20, 30), (10, 20, 30)) == 0.0


def test_sid_prefix(catalog):
    completions = [[10, 20, 30, EOS], [10, 20, 31, EOS], [10, 21, 30, EOS], [11, 20, 30, EOS], [12, EOS]]
    out = call(make_sid_prefix(catalog), completions, target=["x"] * 5)
    assert out == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0])


def test_rank_penalties_punish_only_wrong_items_scored_above_the_target():
    groups = ["u1"] * 5 + ["u2"] * 2 + ["u3"] * 2
    items = ["y", "x", "z", "y", "w", "w", None, "y", "z"]
    targets = ["x"] * 5 + ["x"] * 2 + ["y"] * 2
    scores = [-0.5, -1.0, -3.0, -0.5, -0.8, -2.0, 0.0, -0.1, -0.9]
    target_scores = [-1.0] * 5 + [-2.5] * 2 + [-0.1] * 2
    out = rank_penalties(groups, items, targets, scores, target_scores)
    # group u1 by score: y (-0.5) rank 0, w (-0.8) rank 1, x = target (-1.0) rank 2, z (-3.0) rank 3
    assert out[0] == pytest.approx(-1.0)
    assert out[1] == 0.0  # the hit
    assert out[2] == 0.0  # z is wrong but the policy already ranks it below the target
    assert out[3] == pytest.approx(-1.0)  # y again: same item, same rank
    assert out[4] == pytest.approx(-1 / math.log2(3))
    assert out[5] == pytest.approx(-1.0)  # u2: the target was not sampled, but its score (-2.5) is below w's
    assert out[6] == 0.0  # invalid: left to invalid_penalty
    assert out[7:] == [0.0, 0.0]  # u3: the policy ranks the target first, so nothing is above it


def test_rank_penalty_scores_each_distinct_pair_and_the_targets_once(catalog):
    calls = []

    def policy_scores(prompts, sids):
        calls.append(list(zip(prompts, sids)))
        return [{"y": -0.5, "w": -2.0, "x": -1.0}[catalog.items[tuple(s)]] for s in sids]

    func = make_rank_penalty(catalog, policy_scores, only_sampled_targets=False)
    out = call(func, [[10, 20, 31, EOS], [11, 20, 30, EOS], [10, 20, 31, EOS], [12, EOS]], target=["x"] * 4,
               prompts=["p"] * 4)
    assert out == pytest.approx([-1.0, 0.0, -1.0, 0.0])  # y above the (unsampled) target x; w below it; invalid 0
    assert len(calls) == 1 and sorted(calls[0]) == sorted([("p", SIDS["w"]), ("p", SIDS["x"]), ("p", SIDS["y"])])
    with pytest.raises(RuntimeError, match="policy_scores returned 1 scores for 3 pairs"):
        call(make_rank_penalty(catalog, lambda p, s: [0.0], only_sampled_targets=False),
             [[10, 20, 31, EOS], [11, 20, 30, EOS]], target=["x", "x"], prompts=["p", "p"])


def test_rank_penalty_by_default_only_where_a_rollout_hit_the_target(catalog):
    calls = []

    def policy_scores(prompts, sids):
        calls.append(list(zip(prompts, sids)))
        return [{"y": -0.5, "w": -2.0, "x": -1.0}[catalog.items[tuple(s)]] for s in sids]

    func = make_rank_penalty(catalog, policy_scores)
    completions = [[10, 20, 31, EOS], [10, 20, 30, EOS], [11, 20, 30, EOS], [10, 20, 31, EOS], [11, 20, 30, EOS]]
    out = call(func, completions, target=["x"] * 5, prompts=["hit"] * 3 + ["miss"] * 2)
    assert out == pytest.approx([-1.0, 0.0, 0.0, 0.0, 0.0])  # "miss" sampled no x: no penalty at all
    assert {p for p, _ in calls[0]} == {"hit"}  # only the group with a hit is scored
    assert call(func, completions[3:], target=["x"] * 2, prompts=["miss"] * 2) == [0.0, 0.0]
    assert len(calls) == 1  # nothing to score: no policy call


def test_invalid_penalty(catalog):
    out = call(make_invalid_penalty(catalog), [[10, 20, 30, EOS], [10, 20, EOS], [], [10, 20, 30, 30]])
    assert out == [0.0, -1.0, -1.0, -1.0]


class OverlapScorer:
    """A deterministic stand-in with the reward model's scoring signature: word overlap of interest and context."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, contexts: list[str], interests: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([float(interest.lower() in context.lower()) for context, interest in zip(contexts, interests)])


def test_item_context():
    assert item_context("Lab goggles", ["eye safety", "chemistry class"]) == "Lab goggles. Interests: eye safety; chemistry class"
    assert item_context(" ", []) == "unknown item"


def test_interest_reward_scores_generated_item_against_user_interests(catalog):
    scorer = OverlapScorer()
    contexts = {item: item_context(f"item {item}", interests) for item, interests in
                {"x": ["eye safety"], "y": ["soldering"], "z": ["eye safety", "soldering"], "w": []}.items()}
    users = {"u1": ["eye safety", "soldering"], "u2": ["soldering"], "u3": []}
    func = make_interest_reward(catalog, scorer, contexts, users)
    completions = [[10, 20, 30, EOS], [10, 21, 30, EOS], [11, 20, 30, EOS], [10, 20, 31, EOS], [10, EOS], [10, 20, 30, EOS]]
    out = call(func, completions, user_id=["u1", "u1", "u1", "u2", "u2", "u3"])
    assert out == [0.5, 1.0, 0.0, 1.0, 0.0, None]  # u3 has no curated interests: no signal
    assert scorer.calls == 1  # one batched call for the whole rollout batch
    again = call(func, completions[:2], user_id=["u1", "u1"])
    assert again == [0.5, 1.0] and scorer.calls == 1  # cached
