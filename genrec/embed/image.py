"""Optional image vectors keyed by item id, read from .safetensors or .npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_image_vectors(path: Path) -> dict[str, np.ndarray]:
    """item id -> image vector. `.safetensors`: tensor `image` [M, d] + metadata `item_ids` (JSON list);
    `.npz`: arrays `item_ids` [M] and `embeddings` [M, d]. Errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embed.image_emb: {path} not found")
    if path.suffix not in (".safetensors", ".npz"):
        raise ValueError(f"embed.image_emb: {path}: expected a .safetensors or .npz file")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as fh:
                ids = json.loads((fh.metadata() or {}).get("item_ids", "null"))
                vectors = fh.get_tensor("image") if "image" in fh.keys() else None
        else:
            with np.load(path, allow_pickle=False) as data:
                ids = data["item_ids"].tolist() if "item_ids" in data else None
                vectors = data["embeddings"] if "embeddings" in data else None
    except Exception as exc:
        raise ValueError(f"embed.image_emb: cannot read {path} ({exc})") from exc
    if ids is None or vectors is None:
        raise ValueError(f"embed.image_emb: {path} needs item ids and an image matrix (see the field's description)")
    if vectors.ndim != 2 or len(ids) != len(vectors):
        raise ValueError(f"embed.image_emb: {path} has {len(ids)} item ids but a matrix of shape {vectors.shape}")
    return {str(i): np.asarray(v, np.float32) for i, v in zip(ids, vectors, strict=True)}


def image_matrix(vectors: dict[str, np.ndarray], item_ids: list[str]) -> tuple[np.ndarray, int]:
    """Rows in item order (zeros for items without an image) and how many items have one."""
    dim = next(iter(vectors.values())).shape[0] if vectors else 0
    out = np.zeros((len(item_ids), dim), np.float32)
    found = 0
    for row, item in enumerate(item_ids):
        if item in vectors:
            out[row] = vectors[item]
            found += 1
    return out, found
