"""What `genrec run` shows at the end: a few test users' recommendations, each item with its title and SID,
beside the user's interests that explain them (curated by the reward model when the run has them).

Read only from the run folder (recs.jsonl, the SID map, the interest tables) through the serving catalogue,
so the demo explains recommendations exactly as `POST /v1/recommend` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from genrec.artifacts import RunPaths
from genrec.data import load_sequences
from genrec.eval.recs import read_recs
from genrec.serve.catalog import Catalog, Interest


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    title: str
    sid: str
    interests: list[str]
    hit: bool  # the user's test target


@dataclass(frozen=True)
class Sample:
    """One test user: recent history (titles), the interests explaining them, the top recommendations."""

    user_id: str
    history: list[str]
    interests: list[Interest]
    interest_source: str
    items: list[RecommendedItem]


def sample_recommendations(run_dir: Path, system: str, users: int = 3, k: int = 5) -> list[Sample]:
    """`users` test users of `system`'s recs.jsonl, preferring users with their own interests and then a
    hit in the top `k` (a demo should show the model at work), ties by user order in the file."""
    run_dir = Path(run_dir)
    recs = read_recs(RunPaths(run_dir).recs(system), min_items=1)
    catalog = Catalog.load(run_dir)
    test = load_sequences(run_dir).query("split == 'test'")
    rows = {str(u): ([str(i) for i in h], str(t)) for u, h, t in zip(test["user_id"], test["history"], test["target"],
                                                                       strict=True)}
    ranked = sorted((u for u in recs if u in rows),
                    key=lambda u: (u not in catalog.user_interests, rows[u][1] not in recs[u][:k]))
    samples = []
    for user in ranked[:users]:
        history, target = rows[user]
        items = [RecommendedItem(item, catalog.titles.get(item, ""), catalog.sids.get(item, ""),
                                 [i.interest for i in catalog.item_interests.get(item, [])[:2]], item == target)
                 for item in recs[user][:k]]
        samples.append(Sample(user, [catalog.titles.get(i, i) for i in history[-3:]],
                              catalog.explain(user, history, limit=3), catalog.interest_source, items))
    return samples


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def samples_tables(samples: list[Sample], system: str) -> list[Table]:
    """One small table per user: the title names the user and the interests that explain the list, the
    caption their most recent items; rows are the recommended items (* marks the user's test item)."""
    tables = []
    for sample in samples:
        why = "; ".join(f"{i.interest} ({i.score:.2f})" for i in sample.interests) or "none mined"
        table = Table(title=f"{system} for user {sample.user_id} — interests ({sample.interest_source}): {why}",
                      caption="recent history: " + " | ".join(_short(t, 40) for t in sample.history),
                      title_justify="left", caption_justify="left")
        for column in ("#", "recommended item", "SID", "item interests"):
            table.add_column(column, overflow="fold")
        for rank, item in enumerate(sample.items, 1):
            table.add_row(f"{rank}{'*' if item.hit else ''}", _short(item.title), item.sid,
                          "; ".join(_short(i, 40) for i in item.interests))
        tables.append(table)
    return tables
