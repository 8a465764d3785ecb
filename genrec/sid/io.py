"""Reading `item_emb.safetensors` (validated) and writing `sid_map.parquet` / `rqvae.safetensors`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

LEVEL_TOKENS = "abcd"


class EmbeddingFileError(ValueError):
    """The item embedding file is unreadable, lacks a tensor, or does not match the item table."""


def read_item_embeddings(path: Path, tensor: str, item_ids: list[str]) -> np.ndarray:
    """The `tensor` rows of the embedding file, reordered to `item_ids`; every error names the file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise EmbeddingFileError(f"{path}: item embeddings not found; run `genrec embed` first")
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            names = list(fh.keys())
            matrix = fh.get_tensor(tensor) if tensor in names else None
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise EmbeddingFileError(f"{path}: not a readable safetensors file ({exc})") from exc
    if matrix is None:
        raise EmbeddingFileError(f"{path}: no tensor {tensor!r} (has {names}); set sid.embedding or rerun `genrec embed`")
    try:
        file_ids = [str(i) for i in json.loads(meta["item_ids"])]
    except (KeyError, TypeError, json.JSONDecodeError):
        raise EmbeddingFileError(f"{path}: metadata lacks a JSON `item_ids` list") from None
    if matrix.ndim != 2 or len(file_ids) != matrix.shape[0]:
        raise EmbeddingFileError(f"{path}: tensor {tensor!r} has shape {matrix.shape} but {len(file_ids)} item ids")
    row = {item: i for i, item in enumerate(file_ids)}
    missing = [item for item in item_ids if item not in row]
    if missing or len(row) != len(file_ids):
        raise EmbeddingFileError(f"{path}: does not match items.parquet ({len(missing)} items without a row, e.g. "
                                 f"{missing[:5]}; {len(file_ids) - len(row)} duplicate ids); rerun `genrec embed`")
    matrix = np.asarray(matrix, np.float32)[[row[item] for item in item_ids]]
    if not np.isfinite(matrix).all():
        raise EmbeddingFileError(f"{path}: tensor {tensor!r} contains NaN or infinite values")
    return matrix


def sid_string(codes: list[int]) -> str:
    """`[12, 200, 7]` -> `<a_12><b_200><c_7>`."""
    return "".join(f"<{LEVEL_TOKENS[level]}_{code}>" for level, code in enumerate(codes))


def sid_frame(item_ids: list[str], codes: np.ndarray) -> pd.DataFrame:
    """The sid_map table: item_id (str), codes (list[int]), sid (token string)."""
    rows = [list(map(int, c)) for c in codes]
    return pd.DataFrame({"item_id": item_ids, "codes": rows, "sid": [sid_string(c) for c in rows]})
