"""User interests derived from items, for users the miner did not read.

Mining every user is the slow part of MLIM (one LLM answer per user). A user's training items already carry
curated interests, so a user without mined interests gets those instead: each interest of their training items
(label 1), scored by the reward model against the user's history exactly as a mined user interest is, kept when
the model labels it 1, best `limit` first. Only training items are read, so no validation or test target leaks.
"""

from __future__ import annotations

import pandas as pd

from genrec.reward.labels import INTEREST_COLUMNS, history_context
from genrec.reward.model import RewardModel

DERIVED_MODEL = "derived:item-interests"
"""Provenance (`models` column) of derived rows."""


def candidate_interests(labelled: pd.DataFrame, train_items: dict[str, list[str]],
                        titles: dict[str, str]) -> pd.DataFrame:
    """(user, interest) candidates for users with no mined row: their training items' curated interests.

    Case-insensitive duplicates merge; `agreement` counts the user's items carrying the interest and `evidence`
    names them."""
    kept = labelled[(labelled["kind"] == "item") & (labelled["label"] == 1)]
    by_item = kept.groupby("entity_id", sort=False)["interest"].agg(list).to_dict()
    mined_users = set(labelled.loc[labelled["kind"] == "user", "entity_id"])
    rows = []
    for user, items in train_items.items():
        if user in mined_users:
            continue
        found: dict[str, tuple[str, list[str]]] = {}
        for item in dict.fromkeys(items):
            for interest in by_item.get(item, []):
                found.setdefault(interest.strip().lower(), (interest, []))[1].append(item)
        for spelling, sources in found.values():
            rows.append((user, spelling, "; ".join(titles.get(i, i) for i in sources), len(sources)))
    return pd.DataFrame(rows, columns=["entity_id", "interest", "evidence", "agreement"])


def derive_user_interests(labelled: pd.DataFrame, train_items: dict[str, list[str]], titles: dict[str, str],
                          model: RewardModel, limit: int) -> pd.DataFrame:
    """Rows in the labelled schema (kind "user") for users without mined interests: up to `limit` candidates
    per user that the reward model labels 1 against the user's training history, highest score first."""
    columns = [*INTEREST_COLUMNS, "score", "label", "threshold"]
    candidates = candidate_interests(labelled, train_items, titles)
    if candidates.empty:
        return pd.DataFrame(columns=columns)
    context = {u: history_context(train_items[u], titles) for u in candidates["entity_id"].unique()}
    contexts = [context[u] for u in candidates["entity_id"]]
    scores = model.score(contexts, candidates["interest"].tolist()).astype(float)
    threshold = model.threshold
    derived = candidates.assign(kind="user", score=scores, label=(scores >= threshold).astype(int), threshold=threshold,
                                reasoning="curated interest of the user's training items, scored against their history",
                                models=[[DERIVED_MODEL]] * len(candidates), prompt_hash="")
    derived = derived[derived["label"] == 1].sort_values(["entity_id", "score"], ascending=[True, False], kind="stable")
    return derived.groupby("entity_id", sort=False).head(limit)[columns].reset_index(drop=True)
