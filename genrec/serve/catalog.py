"""What the endpoint knows about items and users, read once from the run folder at start-up.

Items (titles), the SID map, each user's known history and the interests that explain a user or an item:
curated interests (`label/interests_labelled.parquet`, label 1, by classifier score) when the run has
them, else the raw mined ones (`mine/interests.parquet`, by multi-LLM agreement), else none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from genrec.artifacts import RunPaths
from genrec.data import load_items, load_sequences


@dataclass(frozen=True)
class Interest:
    """One interest phrase and the weight it was ranked by (classifier probability or agreement count)."""

    interest: str
    score: float


@dataclass
class Catalog:
    """Item titles and SIDs, user histories and interests, keyed by string ids."""

    titles: dict[str, str]
    sids: dict[str, str]
    histories: dict[str, list[str]]
    user_interests: dict[str, list[Interest]] = field(default_factory=dict)
    item_interests: dict[str, list[Interest]] = field(default_factory=dict)
    interest_source: str = "none"

    @classmethod
    def load(cls, run_dir: Path) -> Catalog:
        """Read items, sequences, the SID map and (optionally) interests of a run, naming what is missing."""
        paths = RunPaths(Path(run_dir))
        if not paths.sid_map.is_file():
            raise FileNotFoundError(f"missing {paths.sid_map}: run `genrec sid` first")
        items = load_items(run_dir)
        sid_map = pd.read_parquet(paths.sid_map, columns=["item_id", "sid"])
        sids = {str(i): str(s) for i, s in zip(sid_map["item_id"], sid_map["sid"], strict=True)}
        titles = {str(i): str(t) for i, t in zip(items["item_id"], items["title"].fillna(""), strict=True)
                  if str(i) in sids}  # a missing title is "" in responses and prompts, as in training
        test = load_sequences(run_dir).query("split == 'test'")
        # everything known about the user: the test row's history plus its last item
        histories = {str(u): [*map(str, h), str(t)] for u, h, t in
                     zip(test["user_id"], test["history"], test["target"], strict=True)}
        catalog = cls(titles=titles, sids=sids, histories=histories)
        catalog._load_interests(paths)
        return catalog

    def _load_interests(self, paths: RunPaths) -> None:
        if paths.interests_labelled.is_file():
            table = pd.read_parquet(paths.interests_labelled, columns=["kind", "entity_id", "interest", "score", "label"])
            table = table[table["label"] == 1].rename(columns={"score": "weight"})
            self.interest_source = "label/interests_labelled.parquet"
        elif paths.interests.is_file():
            table = pd.read_parquet(paths.interests, columns=["kind", "entity_id", "interest", "agreement"])
            table = table.rename(columns={"agreement": "weight"})
            self.interest_source = "mine/interests.parquet"
        else:
            return
        table = table.sort_values("weight", ascending=False, kind="stable")
        for (kind, entity), group in table.groupby(["kind", "entity_id"], sort=False):
            ranked = [Interest(str(i), float(w)) for i, w in zip(group["interest"], group["weight"], strict=True)]
            target = self.user_interests if kind == "user" else self.item_interests
            target[str(entity)] = ranked

    def unknown_items(self, item_ids: Sequence[str]) -> list[str]:
        """The ids (in request order, once each) that have no SID in this run."""
        return list(dict.fromkeys(i for i in item_ids if i not in self.sids))

    def explain(self, user_id: str | None, history: Sequence[str], limit: int) -> list[Interest]:
        """The interests that explain a user's recommendations: their own when known, else their history's."""
        if user_id is not None and user_id in self.user_interests:
            return self.user_interests[user_id][:limit]
        return self.history_interests(history, limit)

    def history_interests(self, item_ids: Sequence[str], limit: int) -> list[Interest]:
        """Interests of a history given as item ids: its items' interests, most frequent first."""
        counts: dict[str, float] = {}
        for item in item_ids:
            for interest in self.item_interests.get(item, []):
                counts[interest.interest] = counts.get(interest.interest, 0.0) + 1.0
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
        return [Interest(name, weight) for name, weight in ranked]
