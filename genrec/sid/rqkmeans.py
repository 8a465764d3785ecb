"""RQ-KMeans: residual k-means per level on the item embeddings (the training-free baseline quantiser)."""

from __future__ import annotations

import numpy as np

from genrec.sid.kmeans import kmeans_centroids, nearest
from genrec.sid.quantized import Quantized


def fit_rqkmeans(x: np.ndarray, levels: int, size: int, seed: int) -> Quantized:
    """Level l clusters the residual left by levels < l; reconstruction = sum of the chosen centroids."""
    residual = np.asarray(x, np.float32).copy()
    codes, tensors = [], {}
    dist = np.zeros((len(x), size), np.float32)
    for level in range(levels):
        centroids = kmeans_centroids(residual, size, seed + level)
        idx, dist = nearest(residual, centroids)
        residual -= centroids[idx]
        codes.append(idx)
        tensors[f"codebook_{level}"] = centroids
    return Quantized(codes=np.stack(codes, 1).astype(np.int64), last_dist=dist.astype(np.float32),
                     recon_loss=float((residual ** 2).mean()), tensors=tensors)
