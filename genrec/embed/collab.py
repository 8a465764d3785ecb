"""Collaborative item vectors for semantic IDs: the trained SASRec baseline's item embedding table.

Text (and interest) vectors group items by what they say; SASRec's item table groups them by who buys them
together. LETTER (arXiv 2405.07314) argues SIDs need both; appending the collaborative vector before the
RQ-VAE is the simplest form of that. SASRec is fitted on the training split only (validation picks its epoch),
so no test target reaches the SIDs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genrec.embed.encode import l2_normalise


def sasrec_item_vectors(path: Path, item_ids: list[str], trained: set[str]) -> np.ndarray:
    """[len(item_ids), hidden] rows in item order: SASRec's item embeddings, centred over the items seen in
    training and L2-normalised; zeros for items never in a training sequence (their rows are untrained noise)."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    table = saved["state_dict"]["item_emb.weight"].float().numpy()
    index = {str(item): row + 1 for row, item in enumerate(saved["item_ids"])}  # row 0 is padding
    unknown = [i for i in item_ids if i not in index]
    if unknown:
        raise ValueError(f"embed.collab: {path} was trained on another item set ({len(unknown)} items unknown, "
                         f"e.g. {unknown[:3]}); re-run the baselines stage")
    vectors = table[[index[i] for i in item_ids]]
    seen = np.array([i in trained for i in item_ids])
    out = np.zeros_like(vectors)
    if seen.any():
        out[seen] = l2_normalise(vectors[seen] - vectors[seen].mean(0, keepdims=True))
    return out.astype(np.float32)


def append_collab(fused: np.ndarray, collab: np.ndarray, weight: float) -> np.ndarray:
    """[sqrt(1-w) fused, sqrt(w) collab]: both parts unit length, `w` is the collaborative share."""
    return np.concatenate([np.sqrt(1 - weight) * l2_normalise(fused), np.sqrt(weight) * collab],
                          axis=1).astype(np.float32)
