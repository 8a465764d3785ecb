"""Behavioural labels for (entity, interest) pairs, with no look at validation or test targets.

Everything here reads only each user's *training* items (`genrec.data.training_items`):
- a user's training items are split into earlier items (the context the classifier sees) and later
  items (the evidence that decides the label);
- an item's evidence is the other training items of the users who bought it (most co-bought first);
- an interest is *supported* when its best cosine similarity to an evidence item beats the
  `null_quantile` of its similarity to random catalogue items, raised to the power 1/k for k evidence
  items (the quantile of the max of k random draws), so generic interests that resemble everything
  and entities with many evidence items are not favoured.
Pairs are each entity's own mined interests plus interests drawn from other entities of the same kind
and fold, all labelled by the same support rule.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genrec.reward.config import LabelConfig

Embed = Callable[[list[str]], np.ndarray]
"""Texts -> L2-normalised embeddings [n, d] (the reward model's cached encoder)."""

INTEREST_COLUMNS = ["kind", "entity_id", "interest", "evidence", "reasoning", "models", "agreement", "prompt_hash"]


def item_texts(items: pd.DataFrame) -> dict[str, str]:
    """One line of text per item: title, brand, most specific category and the start of the description."""
    texts = {}
    for row in items.itertuples(index=False):
        category = str(row.categories or "").split(",")[-1].strip()
        parts = [str(row.title or "").strip(), str(row.brand or "").strip(), category,
                 str(row.description or "").strip()[:200]]
        texts[str(row.item_id)] = " | ".join(p for p in parts if p)
    return texts


def history_context(history: Iterable[str], titles: dict[str, str]) -> str:
    """A user's context: item titles, newest first (so truncation by the encoder drops the oldest)."""
    return "; ".join(titles[i] for i in reversed(list(history)))


def split_user_items(items: list[str], later_fraction: float) -> tuple[list[str], list[str]]:
    """(earlier, later) training items; later holds at least one item and earlier keeps at least one."""
    n_later = min(max(1, round(len(items) * later_fraction)), len(items) - 1)
    return items[:len(items) - n_later], items[len(items) - n_later:]


def co_bought(train_items: dict[str, list[str]], max_evidence: int) -> dict[str, list[str]]:
    """Per item, the other training items of its buyers, most frequently co-bought first (ties by id)."""
    counts: dict[str, Counter[str]] = {}
    for items in train_items.values():
        unique = set(items)
        for item in unique:
            counts.setdefault(item, Counter()).update(unique - {item})
    return {item: [i for i, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:max_evidence]]
            for item, c in counts.items() if c}


def holdout_fold(kind: str, entity_id: str, fraction: float) -> str:
    """"holdout" or "train", decided by a hash of the entity (stable across runs and seeds)."""
    digest = int(hashlib.sha256(f"{kind}:{entity_id}".encode()).hexdigest()[:8], 16)
    return "holdout" if digest / 0xFFFFFFFF < fraction else "train"


@dataclass(frozen=True)
class Evidence:
    """What the labels may look at: per entity, its training context text and its evidence items."""

    context: dict[tuple[str, str], str]
    evidence: dict[tuple[str, str], list[str]]
    catalogue: list[str]  # every item in some user's training items (the null pool is drawn from it)


def build_evidence(train_items: dict[str, list[str]], texts: dict[str, str], titles: dict[str, str],
                   config: LabelConfig) -> Evidence:
    """Contexts and evidence of every labellable user and item."""
    context: dict[tuple[str, str], str] = {}
    evidence: dict[tuple[str, str], list[str]] = {}
    for user, items in train_items.items():
        if len(items) < 2:
            continue
        earlier, later = split_user_items(items, config.later_fraction)
        context["user", user] = history_context(earlier, titles)
        evidence["user", user] = later[-config.max_evidence:]
    for item, others in co_bought(train_items, config.max_evidence).items():
        context["item", item] = texts[item]
        evidence["item", item] = others
    catalogue = sorted({i for items in train_items.values() for i in items})
    return Evidence(context, evidence, catalogue)


def candidate_pairs(interests: pd.DataFrame, ev: Evidence, config: LabelConfig) -> pd.DataFrame:
    """Own interests of every labellable entity plus `foreign_per_entity` interests of other entities
    of the same kind and fold. Columns: kind, entity_id, interest, own, fold, context."""
    rng = np.random.default_rng(config.seed)
    own = interests.loc[[(k, e) in ev.context for k, e in zip(interests["kind"], interests["entity_id"])],
                        ["kind", "entity_id", "interest"]].drop_duplicates()
    own = own.assign(own=True, fold=[holdout_fold(k, e, config.holdout_fraction)
                                     for k, e in zip(own["kind"], own["entity_id"])])
    foreign = []
    for (kind, fold), group in own.groupby(["kind", "fold"], sort=True):
        entities = group["entity_id"].unique()
        if config.foreign_per_entity == 0 or len(entities) < 2:
            continue
        pool_entity = group["entity_id"].to_numpy()
        pool_interest = group["interest"].to_numpy()
        mine = group.groupby("entity_id")["interest"].agg(lambda s: {x.lower() for x in s})
        for entity in entities:
            picks = rng.choice(len(pool_entity), size=min(len(pool_entity), 4 * config.foreign_per_entity), replace=False)
            chosen = [pool_interest[j] for j in picks
                      if pool_entity[j] != entity and pool_interest[j].lower() not in mine[entity]]
            for interest in dict.fromkeys(chosen[:config.foreign_per_entity]):
                foreign.append((kind, entity, interest, False, fold))
    pairs = pd.concat([own, pd.DataFrame(foreign, columns=list(own.columns))], ignore_index=True)
    pairs["context"] = [ev.context[k, e] for k, e in zip(pairs["kind"], pairs["entity_id"])]
    return pairs


def support_labels(pairs: pd.DataFrame, ev: Evidence, texts: dict[str, str], embed: Embed,
                   config: LabelConfig, chunk: int = 4096) -> pd.DataFrame:
    """Add `support` (best similarity to an evidence item), `null_threshold` and `label` to the pairs."""
    rng = np.random.default_rng(config.seed)
    pool_ids = list(rng.choice(ev.catalogue, size=min(config.null_pool, len(ev.catalogue)), replace=False))
    interests = list(dict.fromkeys(pairs["interest"]))
    interest_row = {s: i for i, s in enumerate(interests)}
    interest_emb = embed(interests)
    pool_emb = embed([texts[i] for i in pool_ids])
    evidence_items = sorted({i for items in ev.evidence.values() for i in items})
    item_row = {item: i for i, item in enumerate(evidence_items)}
    item_emb = embed([texts[i] for i in evidence_items])

    keys = list(zip(pairs["kind"], pairs["entity_id"]))
    width = max(len(ev.evidence[k]) for k in keys)
    index = np.zeros((len(pairs), width), dtype=np.int64)
    mask = np.zeros((len(pairs), width), dtype=bool)
    for r, key in enumerate(keys):
        rows = [item_row[i] for i in ev.evidence[key]]
        index[r, :len(rows)] = rows
        mask[r, :len(rows)] = True
    rows = np.array([interest_row[s] for s in pairs["interest"]])
    levels = config.null_quantile ** (1.0 / mask.sum(axis=1))

    support = np.empty(len(pairs), dtype=np.float32)
    null = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), chunk):
        sl = slice(start, start + chunk)
        vec = interest_emb[rows[sl]]
        sims = np.einsum("nd,nkd->nk", vec, item_emb[index[sl]])
        support[sl] = np.where(mask[sl], sims, -np.inf).max(axis=1)
        null_sims = np.sort(vec @ pool_emb.T, axis=1)
        position = np.minimum(np.floor(levels[sl] * null_sims.shape[1]).astype(int), null_sims.shape[1] - 1)
        null[sl] = null_sims[np.arange(len(vec)), position]
    return pairs.assign(support=support, null_threshold=null, label=(support > null).astype(int))
