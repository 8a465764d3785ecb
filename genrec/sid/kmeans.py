"""k-means for codebooks (RQ-VAE initialisation and the RQ-KMeans baseline): scikit-learn, seeded."""

from __future__ import annotations

import numpy as np


def kmeans_centroids(x: np.ndarray, k: int, seed: int, max_iter: int = 100) -> np.ndarray:
    """k centroids of the rows of x. With fewer distinct rows than k, the distinct rows are all kept and the
    remaining centroids are jittered copies of them (so every code stays reachable for dead-code reset)."""
    from sklearn.cluster import KMeans

    x = np.asarray(x, np.float32)
    distinct = np.unique(x, axis=0)
    if len(distinct) <= k:
        rng = np.random.default_rng(seed)
        extra = distinct[rng.integers(0, len(distinct), k - len(distinct))]
        scale = float(x.std()) or 1.0
        return np.concatenate([distinct, extra + 1e-3 * scale * rng.standard_normal(extra.shape)]).astype(np.float32)
    km = KMeans(n_clusters=k, n_init=1, max_iter=max_iter, random_state=seed).fit(x)
    return km.cluster_centers_.astype(np.float32)


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's nearest centroid, and the squared distances to every centroid [N, K]."""
    d = (x * x).sum(1, keepdims=True) - 2 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    d = np.maximum(d, 0.0)
    return d.argmin(1), d
