"""Seeding GemiRec's interest dictionary from the mined deep interests: each item's curated interest
phrases are embedded (sentence-transformers), pooled per item and clustered with k-means into
`dictionary_size` codes; an item's code is its cluster, and each code is named by the phrase nearest its centre."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genrec.multi.config import GemiRecConfig

PHRASES_PER_ITEM = 8


@dataclass
class Seeding:
    """Item codes [N] (-1: the item has no mined interest), code names, and which file they came from."""

    item_codes: torch.Tensor
    names: list[str]
    source: str
    path: Path | None


def seed_codes(cfg: GemiRecConfig, run_dir: Path, item_ids: list[str]) -> Seeding:
    """k-means codes of the items' pooled interest embeddings; every item without interests gets -1."""
    from sklearn.cluster import KMeans

    from genrec.embed.encode import encode, load_encoder, pool_interests
    from genrec.embed.interests import load_item_interests

    found = load_item_interests(run_dir, cfg.seed_interests, set(item_ids), PHRASES_PER_ITEM)
    codes = torch.full((len(item_ids),), -1, dtype=torch.int64)
    if len(found.by_item) < cfg.dictionary_size:
        raise ValueError(f"multi.model.seed_interests={cfg.seed_interests}: {len(found.by_item)} items have interests "
                         f"({found.path}), fewer than dictionary_size={cfg.dictionary_size}")
    phrases = sorted({p for entries in found.by_item.values() for p, _ in entries})
    row = {p: i for i, p in enumerate(phrases)}
    vectors = encode(load_encoder(cfg.encoder, 64, cfg.threads), phrases, 64, "embedding mined interests")
    members = [[(row[p], w) for p, w in found.by_item.get(item, [])] for item in item_ids]
    pooled, has = pool_interests(vectors, members)
    kmeans = KMeans(cfg.dictionary_size, n_init=1, random_state=cfg.seed).fit(pooled[has])
    codes[torch.from_numpy(np.flatnonzero(has))] = torch.from_numpy(kmeans.labels_.astype(np.int64))
    nearest = (vectors @ kmeans.cluster_centers_.T).argmax(0)
    return Seeding(codes, [phrases[i] for i in nearest], found.source, found.path)
