"""Interest-conditioned decoding: one constrained beam group per predicted interest of a user, merged.

A plain beam search spends its beams on the user's dominant taste. Here an interest is a first-level SID
code (the coarsest level, a category of similar items); per user, `m` interests are chosen, each gets a
beam group whose search is confined to that code's sub-trie (the SID is forced to start with the code),
the beams and the k output slots are split over the groups by the interests' predicted probabilities
(two beams and one slot each first, the rest by largest remainder, never more than the code has items),
and the groups' items merge into one top-k list in
which every item carries the interest it came from.

Interest sources (`select` functions):
- `top_codes`: the decoder's own first-step distribution (category-first, as in ULIM's cascade);
- `MinedInterestCodes`: the user's curated deep interests (mined text), each mapped to the code whose items
  its text embedding is closest to; the decoder's top codes fill the remaining slots.
- `prompt_picks`: the user's curated deep interests fed as text: each interest's group decodes over the whole
  catalogue from the user's prompt conditioned on that one interest (an `llm` checkpoint trained with
  interests in its prompt), weighted by the reward classifier's score; groups may find the same item, which
  goes to the first (most probable) interest.
- `dictionary_picks`: GemiRec's posterior over its interest dictionary, each predicted dictionary code mapped
  to the first-level code most of its retrieved items carry.
When the chosen codes hold fewer than k items, the decoder's next codes join (`CodeSpace.fill`), so lists
are never short for lack of items.
A group's probability is its pick's `logp` renormalised over the user's picks: the decoder's log-probability
of the code for the first two sources (and for codes that fill up), log(posterior x share) for GemiRec's.
An item's score stays log p(full SID | prompt), comparable across groups.

Merging (`MergeRule`): `score` and `interleave` give every group its quota of the list; `coverage` adds the
plain beam search (one whole-catalogue group from the user's prompt) to the groups, pools every item found,
and fills the list greedily by score minus a penalty for each item already listed from the same first-level
code, so a near-tie goes to an interest the list lacks while the pool still holds the plain beam's own items.

The engines (`hf_beam`, `vllm_beam`) supply the first-step log-probs and run the groups; planning and
merging live here, so both engines split and merge identically.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np


class Pick(NamedTuple):
    """One chosen interest: a first-level code token (None: the whole catalogue), the interest's text, the items
    it may return and the interest's log-probability (renormalised over a user's picks into the group's weight);
    `prompt`, when given, replaces the request's prompt for this interest's group (prompt conditioning)."""

    code: int | None
    text: str
    size: int
    logp: float
    prompt: tuple[int, ...] = ()


HISTORY_ONLY = "(history only)"  # a prompt-conditioned user without curated interests; a plain-beam item outside them
Chosen = list[Pick]  # a user's interests, best first
Select = Callable[[Sequence[dict[int, float]]], list[Chosen]]  # root log-probs per prompt -> chosen interests


@dataclass(frozen=True)
class Group:
    """One beam group: a request's search confined to SIDs starting with `prefix`, from the request's prompt or,
    when `prompt` is given, from that one."""

    request: int
    interest: str
    weight: float
    prefix: tuple[int, ...]
    prefix_score: float
    beams: int
    quota: int
    prompt: tuple[int, ...] = ()
    plain: bool = False  # the unconditioned beam search of `coverage` merging (no interest of its own)

    def prompt_of(self, prompts: Sequence[Sequence[int]]) -> Sequence[int]:
        """The prompt this group decodes from."""
        return self.prompt or prompts[self.request]


@dataclass(frozen=True)
class Recommendation:
    """A recommended item, its score (summed raw SID log-probs) and the interest whose group produced it (with
    the interest's first-level code; None for a prompt-conditioned interest over the whole catalogue)."""

    item: str
    score: float
    interest: str
    code: int | None


def _largest_remainder(total: int, weights: Sequence[float], minimum: int) -> list[int]:
    spare = total - minimum * len(weights)
    norm = sum(weights)
    share = [spare * w / norm if norm > 0 else spare / len(weights) for w in weights]
    counts = [minimum + math.floor(s) for s in share]
    order = sorted(range(len(weights)), key=lambda g: (-round(share[g] - math.floor(share[g]), 6), g))
    for g in order[:total - sum(counts)]:
        counts[g] += 1
    return counts


def allocate(total: int, weights: Sequence[float], minimum: int = 1, caps: Sequence[int] | None = None) -> list[int]:
    """Split `total` slots over groups: `minimum` each, the rest in proportion to weight (largest remainder,
    compared to 6 decimals so float noise cannot reorder near-ties; ties go to the earlier group). A group
    never gets more than its cap (a code with 3 items needs no 8 beams): what it cannot use goes to the
    others, and is left unused when every group is full."""
    if total < minimum * len(weights):
        raise ValueError(f"cannot give {len(weights)} groups {minimum} of {total} slots each")
    caps = [max(minimum, c) for c in caps] if caps is not None else [total] * len(weights)
    counts, free, left = [0] * len(weights), list(range(len(weights))), total
    while free:
        share = _largest_remainder(left, [weights[g] for g in free], minimum)
        over = [g for g, n in zip(free, share, strict=True) if n > caps[g]]
        if not over:
            for g, n in zip(free, share, strict=True):
                counts[g] = n
            break
        for g in over:
            counts[g] = caps[g]
            left -= caps[g]
        free = [g for g in free if g not in over]
    return counts


def check_interest_args(num_beams: int, k: int, m: int) -> None:
    """Every group needs 2 beams (transformers' beam search needs >= 2) and one output slot."""
    if m < 1 or 2 * m > num_beams or m > k or k > num_beams:
        raise ValueError(f"need 1 <= num_interests <= k <= num_beams and 2 * num_interests <= num_beams, "
                         f"got num_interests={m}, k={k}, num_beams={num_beams}")


def plan_groups(chosen: Sequence[Chosen], root: Sequence[dict[int, float]], num_beams: int, k: int,
                allow_empty: bool = False) -> list[Group]:
    """The beam groups of every request: weights = the picks' probabilities renormalised over the request's
    picks; each group's beams start from the decoder's log-probability of its code. Prompt-conditioned groups
    (no code) may find the same items, so the most probable one gets at least k beams (a list never comes out
    short; the request may then use a few more than `num_beams` beams). A request without picks is an error
    unless `allow_empty` (another group, e.g. `coverage`'s plain one, fills its list)."""
    groups = []
    for request, (picks, logprobs) in enumerate(zip(chosen, root, strict=True)):
        if not picks:
            if allow_empty:
                continue
            raise ValueError(f"request {request}: no interest chosen")
        top = max(p.logp for p in picks)
        weights = [math.exp(p.logp - top) for p in picks]
        weights = [w / sum(weights) for w in weights]
        sizes = [p.size for p in picks]
        beams = allocate(num_beams, weights, minimum=2, caps=sizes)
        if picks[0].code is None:  # whole-catalogue groups overlap: the first alone must be able to fill the list
            beams[0] = max(beams[0], min(k, sizes[0]))
        quota = allocate(k, weights, caps=[min(b, n) for b, n in zip(beams, sizes, strict=True)])
        groups += [Group(request, p.text, w, () if p.code is None else (p.code,),
                         0.0 if p.code is None else logprobs[p.code], b, q, p.prompt)
                   for p, w, b, q in zip(picks, weights, beams, quota, strict=True)]
    return groups


Order = Literal["score", "interleave", "coverage"]


def merge(groups: Sequence[Group], results: Sequence[Sequence[tuple[str, float]]], n_requests: int,
          k: int, order: Literal["score", "interleave"] = "score") -> list[list[Recommendation]]:
    """Per request: each group's best `quota` items not already taken by an earlier group (groups of one code
    never share items; prompt-conditioned groups over the whole catalogue may), then the best leftovers until
    k. `score` orders the list by score; `interleave` gives every prefix of it its interests' shares
    (Sainte-Laguë: the next slot goes to the group with the highest weight / (2 * items placed + 1), its best
    remaining item)."""
    picked: list[list[Recommendation]] = [[] for _ in range(n_requests)]
    spare: list[list[Recommendation]] = [[] for _ in range(n_requests)]
    seen: list[set[str]] = [set() for _ in range(n_requests)]
    weight: list[dict[tuple[int | None, str], float]] = [{} for _ in range(n_requests)]
    for group, ranked in zip(groups, results, strict=True):
        code = group.prefix[0] if group.prefix else None
        fresh = [Recommendation(item, score, group.interest, code) for item, score in ranked
                 if item not in seen[group.request]]
        picked[group.request] += fresh[:group.quota]
        spare[group.request] += fresh[group.quota:]
        seen[group.request].update(r.item for r in fresh[:group.quota])
        weight[group.request][(code, group.interest)] = group.weight
    out = []
    for mine, rest, taken, weights in zip(picked, spare, seen, weight, strict=True):
        for rec in sorted(rest, key=lambda r: -r.score):
            if len(mine) >= k:
                break
            if rec.item not in taken:
                mine.append(rec)
                taken.add(rec.item)
        mine = sorted(mine, key=lambda r: -r.score)[:k]
        out.append(_interleave(mine, weights) if order == "interleave" else mine)
    return out


def merge_coverage(groups: Sequence[Group], results: Sequence[Sequence[tuple[str, float]]], n_requests: int, k: int,
                   code_of: Callable[[str], int], penalty: float) -> list[list[Recommendation]]:
    """Per request: every group's items pooled (an item found twice keeps its best score and the first interest
    group's name; an item only the plain group found is named after the chosen interest of its code, else
    HISTORY_ONLY), then the list filled greedily with the item of highest score - penalty x (items already listed
    with its first-level code; ties: the higher score). penalty 0 gives the pool by score, which holds every item
    of the plain beam search: the list is never worse than it by the model's own scores."""
    names: list[dict[int, str]] = [{} for _ in range(n_requests)]
    for group in groups:
        if group.prefix and not group.plain:
            names[group.request].setdefault(group.prefix[0], group.interest)
    pools: list[dict[str, Recommendation]] = [{} for _ in range(n_requests)]
    order = sorted(range(len(groups)), key=lambda g: groups[g].plain)  # interest groups name an item first
    for group, ranked in ((groups[g], results[g]) for g in order):
        pool = pools[group.request]
        for item, score in ranked:
            if item in pool:
                if score > pool[item].score:
                    pool[item] = dataclasses.replace(pool[item], score=score)
            elif group.plain:
                code = code_of(item)
                pool[item] = Recommendation(item, score, names[group.request].get(code, HISTORY_ONLY), code)
            else:
                pool[item] = Recommendation(item, score, group.interest, group.prefix[0] if group.prefix else None)
    return [_fill_by_coverage(sorted(pool.values(), key=lambda r: -r.score), k, code_of, penalty) for pool in pools]


def _fill_by_coverage(ranked: list[Recommendation], k: int, code_of: Callable[[str], int],
                      penalty: float) -> list[Recommendation]:
    left = [(rec, code_of(rec.item)) for rec in ranked]  # best first; each item's code looked up once
    listed: Counter[int] = Counter()
    out: list[Recommendation] = []
    while left and len(out) < k:
        best = max(range(len(left)), key=lambda j: (left[j][0].score - penalty * listed[left[j][1]], -j))
        rec, code = left.pop(best)
        out.append(rec)
        listed[code] += 1
    return out


def _interleave(recs: Sequence[Recommendation], weights: dict[tuple[int | None, str], float]) -> list[Recommendation]:
    queues: dict[tuple[int | None, str], list[Recommendation]] = {}
    for rec in recs:  # best first, so each queue is too
        queues.setdefault((rec.code, rec.interest), []).append(rec)
    placed = dict.fromkeys(queues, 0)
    out: list[Recommendation] = []
    while len(out) < len(recs):
        key = max((q for q in queues if placed[q] < len(queues[q])),
                  key=lambda q: round(weights[q] / (2 * placed[q] + 1), 6))
        out.append(queues[key][placed[key]])
        placed[key] += 1
    return out


@dataclass(frozen=True, order=True)
class MergeRule:
    """How a request's beam groups become its list (module doc): `order` and, for `coverage`, the penalty per
    item already listed from the same first-level code (in the unit of the scores, summed log-probs; the tuned
    default lives in the config, `InterestDecoding.coverage_penalty`)."""

    order: Order = "score"
    coverage_penalty: float = 0.0

    def plan(self, chosen: Sequence[Chosen], root: Sequence[dict[int, float]], num_beams: int, k: int) -> list[Group]:
        """The interest groups (`plan_groups`), plus for `coverage` one plain `num_beams` group per request (which
        alone, with no interests chosen, re-ranks the plain beam's items)."""
        groups = plan_groups(chosen, root, num_beams, k, allow_empty=self.order == "coverage")
        if self.order == "coverage":
            groups += [Group(r, HISTORY_ONLY, 0.0, (), 0.0, num_beams, 0, plain=True) for r in range(len(chosen))]
        return groups

    def apply(self, groups: Sequence[Group], results: Sequence[Sequence[tuple[str, float]]], n_requests: int, k: int,
              code_of: Callable[[str], int]) -> list[list[Recommendation]]:
        """The merged top-k list of every request; `code_of`: an item's first-level code token."""
        if self.order == "coverage":
            return merge_coverage(groups, results, n_requests, k, code_of, self.coverage_penalty)
        return merge(groups, results, n_requests, k, self.order)


def interest_search(root_logprobs: Callable[[Sequence[Sequence[int]]], list[dict[int, float]]],
                    search_groups: Callable[[Sequence[Sequence[int]], Sequence[Group]], list[list[tuple[str, float]]]],
                    prompts: Sequence[Sequence[int]], num_beams: int, k: int, select: Select,
                    code_of: Callable[[str], int], rule: MergeRule = MergeRule()) -> list[list[Recommendation]]:
    """Interest-conditioned decoding of `prompts` with one engine's two primitives (see the module doc)."""
    root = [{} for _ in prompts] if isinstance(select, GivenPicks) else root_logprobs(prompts)
    groups = rule.plan(select(root), root, num_beams, k)
    return rule.apply(groups, search_groups(prompts, groups), len(prompts), k, code_of)


def code_labels(first_codes: dict[str, int], categories: dict[str, str]) -> dict[int, str]:
    """First-level code token -> the most common category of its items (the finest level of the
    comma-separated category path; `first_codes`: item -> code token, `categories`: item -> path)."""
    per_code: dict[int, Counter[str]] = {}
    for item, code in first_codes.items():
        leaf = (categories.get(item) or "").split(",")[-1].strip()
        per_code.setdefault(code, Counter())[leaf or "uncategorised"] += 1
    return {code: counts.most_common(1)[0][0] for code, counts in per_code.items()}


@dataclass(frozen=True)
class CodeSpace:
    """What a source needs to know about the first-level codes: their names and item counts, the list length
    k and the most groups the beams allow (`num_beams // 2`: two beams a group)."""

    labels: dict[int, str]
    sizes: dict[int, int]
    k: int
    max_groups: int

    def pick(self, code: int, logp: float, text: str | None = None) -> Pick:
        """A code as an interest, named by its items' category unless a text is given."""
        return Pick(code, text if text is not None else self.labels.get(code, str(code)), self.sizes[code], logp)

    def fill(self, picks: Chosen, logprobs: dict[int, float], m: int) -> Chosen:
        """Top `picks` up with the decoder's next best codes (weighted by the decoder's probability) until
        there are m interests whose codes hold at least k items (small codes would leave the list short),
        within `max_groups`."""
        picks, have = list(picks), {p.code for p in picks}
        for code in sorted(logprobs, key=lambda c: -logprobs[c]):
            if len(picks) >= self.max_groups or (len(picks) >= m and sum(p.size for p in picks) >= self.k):
                break
            if code not in have:
                picks.append(self.pick(code, logprobs[code]))
                have.add(code)
        return picks


def top_codes(m: int, space: CodeSpace) -> Select:
    """Source (a): the decoder's m most probable first-level codes, named by their items' category."""

    def select(root: Sequence[dict[int, float]]) -> list[Chosen]:
        return [space.fill([], lp, m) for lp in root]

    return select


class MinedInterestCodes:
    """Source (b): a user's curated interests (text) mapped to first-level codes by embedding similarity.

    A code's vector is the mean of its items' normalised text embeddings; an interest goes to the code with
    the highest cosine. Codes come in the order of the user's interests (best classifier score first, at most
    m codes), duplicates merged (their texts joined); the decoder's top codes fill up (`CodeSpace.fill`).
    Users without curated interests get the decoder's codes only.
    """

    def __init__(self, m: int, space: CodeSpace, codes: Sequence[int], code_vectors: np.ndarray,
                 interest_vectors: dict[str, np.ndarray]) -> None:
        self.m, self.space, self.codes = m, space, list(codes)
        self.code_vectors = code_vectors / np.linalg.norm(code_vectors, axis=1, keepdims=True)
        self.interest_vectors = interest_vectors

    def code_of(self, interest: str) -> int:
        """The first-level code whose items are closest in meaning to an interest text."""
        return self.codes[int(np.argmax(self.code_vectors @ self.interest_vectors[interest]))]

    def for_users(self, user_interests: Sequence[Sequence[str]]) -> Select:
        """The `select` of a batch of prompts whose users have these curated interests (best first)."""

        def select(root: Sequence[dict[int, float]]) -> list[Chosen]:
            if len(root) != len(user_interests):
                raise ValueError(f"{len(root)} prompts but interests for {len(user_interests)} users")
            chosen = []
            for texts, lp in zip(user_interests, root, strict=True):
                named: dict[int, list[str]] = {}
                for text in texts:
                    code = self.code_of(text)
                    if code in named or len(named) < self.m:
                        named.setdefault(code, []).append(text)
                picks = [self.space.pick(code, lp[code], "; ".join(t)) for code, t in named.items()]
                chosen.append(self.space.fill(picks, lp, self.m))
            return chosen

        return select


def prompt_picks(interests: Sequence[tuple[str, float, Sequence[int]]], catalogue: int) -> Chosen:
    """Source (b) as prompt conditioning, for one user: one pick per (curated interest, classifier score,
    prompt conditioned on that interest), best first, over the whole catalogue; a user without curated
    interests gets one pick of their plain prompt (all beams: the plain beam search)."""
    if not interests:
        return [Pick(None, HISTORY_ONLY, catalogue, 0.0)]
    return [Pick(None, text, catalogue, math.log(max(score, 1e-6)), tuple(prompt)) for text, score, prompt in interests]


@dataclass(frozen=True)
class GivenPicks:
    """The `select` of a batch whose prompt-conditioned interests were chosen before decoding: it reads no
    first-step log-probs, so `interest_search` skips that forward pass."""

    chosen: Sequence[Chosen]

    def __post_init__(self) -> None:
        if any(p.code is not None for picks in self.chosen for p in picks):
            raise ValueError("given picks are prompt-conditioned (code None); a code's pick needs the decoder's "
                             "log-prob of the code")

    def __call__(self, root: Sequence[dict[int, float]]) -> list[Chosen]:
        if len(root) != len(self.chosen):
            raise ValueError(f"{len(root)} prompts but interests for {len(self.chosen)} users")
        return list(self.chosen)


@dataclass(frozen=True)
class DictionaryInterest:
    """One of a user's predicted dictionary interests (GemiRec): its posterior probability and the first-level
    codes of the items it retrieves (code token -> share of those items)."""

    prob: float
    shares: dict[int, float]


def dictionary_picks(predicted: Sequence[DictionaryInterest], logprobs: dict[int, float], m: int,
                     space: CodeSpace) -> Chosen:
    """Source (c) for one user: walk the dictionary interests in posterior order; each lands on the first-level
    code most of its retrieved items carry (ties: the smaller token) with probability posterior x share;
    interests landing on the same code add up; at most m codes, the most probable first, topped up by the
    decoder (`CodeSpace.fill`)."""
    weight: dict[int, float] = {}
    for interest in predicted:
        if not interest.shares:
            continue
        code = max(sorted(interest.shares), key=lambda c: interest.shares[c])
        if code in weight or len(weight) < m:
            weight[code] = weight.get(code, 0.0) + interest.prob * interest.shares[code]
    picks = [space.pick(code, math.log(w)) for code, w in sorted(weight.items(), key=lambda cw: -cw[1]) if w > 0]
    return space.fill(picks, logprobs, m)


def dictionary_codes(m: int, space: CodeSpace, predicted: Sequence[Sequence[DictionaryInterest]]) -> Select:
    """The `select` of a batch of prompts whose users have these predicted dictionary interests."""

    def select(root: Sequence[dict[int, float]]) -> list[Chosen]:
        if len(root) != len(predicted):
            raise ValueError(f"{len(root)} prompts but dictionary interests for {len(predicted)} users")
        return [dictionary_picks(p, lp, m, space) for p, lp in zip(predicted, root, strict=True)]

    return select
