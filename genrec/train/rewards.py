"""GRPO reward terms: each a plain function with trl's reward signature `(prompts, completions, **kwargs)`.

trl calls every reward function with the decoded `completions`, the generated `completion_ids` and the
dataset's columns as keyword arguments (here `target` and `user_id`). The SID tokens are special tokens,
so the decoded text is empty: every term reads `completion_ids` and maps them to an item through a
`SidCatalog`. The factories below close over the data a term needs and return a function whose
`__name__` is the term's name (trl logs `rewards/<name>/mean`).

Terms (their weights live in the GRPO config):
- `exact_hit`: 1 when the generated item is the target.
- `sid_prefix`: the share of the target's SID levels matched as a prefix (partial credit: right
  category, wrong item).
- `rank_penalty`: a wrong item the policy scores *above the target* gets -1/log2(rank + 2), rank = its place
  among its group's distinct items by the policy's score (rank 0 = the item the policy is surest of), so the
  most confidently wrong item is punished most (the NDCG-shaped penalty of MiniOneRec). The score is the
  beam-search score (sum of the SID tokens' raw log-probs), so the term says "these items would be
  recommended before the right one"; wrong items ranked below the target get 0. With `only_sampled_targets`
  (the default) only groups in which some rollout hit the target are penalised, so the advantage moves mass
  from the items above the target *to the target*; otherwise the target is scored by the policy even when
  no rollout sampled it, and in a group without a hit the push goes from the policy's head to its tail.
- `invalid_penalty`: -1 for a completion that is not a catalogue SID (0 expected: rollouts are trie-constrained).
- `interest_reward`: the reward classifier's probability that each of the user's curated interests
  holds for the generated item (its title and curated interests as the context), averaged over them;
  None (no signal, ignored by trl) for a user without curated interests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

RewardFunc = Callable[..., list[float | None]]
TERMS = ("exact_hit", "sid_prefix", "rank_penalty", "invalid_penalty", "interest_reward")


@dataclass(frozen=True)
class SidCatalog:
    """The valid SIDs as token-id tuples, both ways, and the ids that end a completion (EOS, pad)."""

    items: Mapping[tuple[int, ...], str]
    sids: Mapping[str, tuple[int, ...]]
    stop_ids: frozenset[int]

    @classmethod
    def build(cls, sid_token_ids: Mapping[str, Sequence[int]], stop_ids: Sequence[int]) -> SidCatalog:
        """From item id -> SID token ids; fails when two items share a SID (the sid stage guarantees none)."""
        sids = {item: tuple(int(t) for t in ids) for item, ids in sid_token_ids.items()}
        items = {ids: item for item, ids in sids.items()}
        if len(items) != len(sids):
            raise ValueError(f"SID map is not unique: {len(sids)} items share {len(items)} SIDs")
        return cls(items=items, sids=sids, stop_ids=frozenset(int(s) for s in stop_ids))

    def item_of(self, completion_ids: Sequence[int]) -> str | None:
        """The item a completion names (trailing EOS/pad ignored), or None when it is not a valid SID."""
        ids = list(completion_ids)
        while ids and ids[-1] in self.stop_ids:
            ids.pop()
        return self.items.get(tuple(ids))


class InterestScorer(Protocol):
    """What the interest reward needs from `genrec.reward.RewardModel`."""

    def score(self, contexts: list[str], interests: list[str]) -> np.ndarray: ...


def _named(name: str, func: RewardFunc) -> RewardFunc:
    func.__name__ = func.__qualname__ = name
    return func


def make_exact_hit(catalog: SidCatalog) -> RewardFunc:
    """1.0 when the completion is the target item's SID, else 0.0."""

    def exact_hit(prompts: list, completions: list, completion_ids: list[list[int]], target: list[str],
                  **_: Any) -> list[float | None]:
        return [float(catalog.item_of(ids) == str(t)) for ids, t in zip(completion_ids, target, strict=True)]

    return _named("exact_hit", exact_hit)


def prefix_share(generated: Sequence[int], target: Sequence[int]) -> float:
    """Share of the target's SID levels that the generated SID matches from the first level on."""
    matched = 0
    for g, t in zip(generated, target, strict=False):
        if g != t:
            break
        matched += 1
    return matched / len(target)


def make_sid_prefix(catalog: SidCatalog) -> RewardFunc:
    """Partial credit per matched SID level (a prefix: level 2 counts only when level 1 matches)."""

    def sid_prefix(prompts: list, completions: list, completion_ids: list[list[int]], target: list[str],
                   **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for ids, t in zip(completion_ids, target, strict=True):
            item = catalog.item_of(ids)
            out.append(0.0 if item is None else prefix_share(catalog.sids[item], catalog.sids[str(t)]))
        return out

    return _named("sid_prefix", sid_prefix)


def rank_penalties(groups: Sequence[Any], items: Sequence[str | None], targets: Sequence[str],
                   scores: Sequence[float], target_scores: Sequence[float]) -> list[float]:
    """-1/log2(rank+2) for each wrong item scored above its target; rank = its place among its group's
    distinct items by score (0 = highest).

    A group is the set of rollouts of one prompt (`groups[i]` is its key); `scores[i]` is the policy's score
    of rollout i's item and `target_scores[i]` that of its target. Hits, items scored at or below the target
    and invalid completions get 0 (hits and invalid SIDs have their own terms).
    """
    best: dict[Any, dict[str, float]] = {}
    for g, item, score in zip(groups, items, scores, strict=True):
        if item is not None:
            best.setdefault(g, {})[item] = score
    ranks = {g: {item: r for r, (item, _) in enumerate(sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])))}
             for g, seen in best.items()}
    out = []
    for g, item, t, score, t_score in zip(groups, items, targets, scores, target_scores, strict=True):
        above = item is not None and item != str(t) and score > t_score
        out.append(-1.0 / math.log2(ranks[g][item] + 2) if above else 0.0)
    return out


PolicyScores = Callable[[Sequence[str], Sequence[Sequence[int]]], Sequence[float]]
"""(prompts, SID token ids) -> the policy's log-probability of each SID after its prompt."""


def make_rank_penalty(catalog: SidCatalog, policy_scores: PolicyScores, only_sampled_targets: bool = True,
                      ) -> RewardFunc:
    """The ranking penalty; `policy_scores` scores each distinct (prompt, item) pair of the batch (and, unless
    `only_sampled_targets`, each prompt's target) in one call. With `only_sampled_targets` a group whose
    rollouts never hit the target gets 0 throughout."""

    def rank_penalty(prompts: list, completions: list, completion_ids: list[list[int]], target: list[str],
                     **_: Any) -> list[float | None]:
        keys = [str(p) for p in prompts]
        items = [catalog.item_of(ids) for ids in completion_ids]
        hit = {k for k, i, t in zip(keys, items, target, strict=True) if i == str(t)}
        scored_keys = set(keys) if not only_sampled_targets else hit
        pairs = sorted({(k, i) for k, i in zip(keys, items, strict=True) if i is not None and k in scored_keys}
                       | {(k, str(t)) for k, t in zip(keys, target, strict=True) if k in scored_keys})
        scored = list(policy_scores([k for k, _ in pairs], [catalog.sids[i] for _, i in pairs])) if pairs else []
        if len(scored) != len(pairs):
            raise RuntimeError(f"rank_penalty: policy_scores returned {len(scored)} scores for {len(pairs)} pairs")
        score = dict(zip(pairs, scored, strict=True))
        scores = [score.get((k, i), 0.0) for k, i in zip(keys, items, strict=True)]  # unscored: no penalty below
        target_scores = [score.get((k, str(t)), math.inf) for k, t in zip(keys, target, strict=True)]  # inf: no hit
        return list(rank_penalties(keys, items, [str(t) for t in target], scores, target_scores))

    return _named("rank_penalty", rank_penalty)


def make_invalid_penalty(catalog: SidCatalog) -> RewardFunc:
    """-1.0 for a completion that is not the SID of a catalogue item."""

    def invalid_penalty(prompts: list, completions: list, completion_ids: list[list[int]],
                        **_: Any) -> list[float | None]:
        return [0.0 if catalog.item_of(ids) is not None else -1.0 for ids in completion_ids]

    return _named("invalid_penalty", invalid_penalty)


def item_context(title: str, interests: Sequence[str]) -> str:
    """The text the reward classifier reads for an item: its title and curated interests."""
    title = str(title).strip() or "unknown item"
    return f"{title}. Interests: {'; '.join(interests)}" if interests else title


def make_interest_reward(catalog: SidCatalog, scorer: InterestScorer, item_contexts: Mapping[str, str],
                         user_interests: Mapping[str, Sequence[str]]) -> RewardFunc:
    """Mean classifier probability of the user's curated interests given the generated item's context.

    Scores are cached per (item, user): the classifier is deterministic and groups repeat items.
    """
    cache: dict[tuple[str, str], float] = {}

    def interest_reward(prompts: list, completions: list, completion_ids: list[list[int]], user_id: list[str],
                        **_: Any) -> list[float | None]:
        items = [catalog.item_of(ids) for ids in completion_ids]
        todo = sorted({(i, str(u)) for i, u in zip(items, user_id, strict=True)
                       if i is not None and user_interests.get(str(u)) and (i, str(u)) not in cache})
        contexts, interests, owners = [], [], []
        for key in todo:
            for interest in user_interests[key[1]]:
                contexts.append(item_contexts[key[0]])
                interests.append(interest)
                owners.append(key)
        if contexts:
            probs = np.asarray(scorer.score(contexts, interests), dtype=float)
            sums: dict[tuple[str, str], list[float]] = {}
            for key, p in zip(owners, probs, strict=True):
                sums.setdefault(key, []).append(float(p))
            cache.update({key: float(np.mean(v)) for key, v in sums.items()})
        out: list[float | None] = []
        for item, u in zip(items, user_id, strict=True):
            if not user_interests.get(str(u)):
                out.append(None)
            else:
                out.append(0.0 if item is None else cache[(item, str(u))])
        return out

    return _named("interest_reward", interest_reward)
