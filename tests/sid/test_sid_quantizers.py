"""RQ-VAE internals (k-means initialisation, dead-code reset), RQ-KMeans, collisions and metrics."""

from __future__ import annotations

import numpy as np
import torch

from genrec.sid.collisions import collision_rate, extra_level, reassign, resolve
from genrec.sid.io import sid_string
from genrec.sid.kmeans import kmeans_centroids
from genrec.sid.metrics import co_consumption, perplexity, utilisation
from genrec.sid.rqkmeans import fit_rqkmeans
from genrec.sid.rqvae import RQVAE, kmeans_init, reset_dead_codes, train_rqvae
from genrec.sid.config import RQVAEConfig

CFG = RQVAEConfig(hidden=[16], latent_dim=4, epochs=3, batch_size=16)


def blobs(n: int = 48, dim: int = 8, k: int = 6) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.standard_normal((k, dim))[np.arange(n) % k] * 4 + 0.1 * rng.standard_normal((n, dim))).astype(np.float32)


def test_model_shapes() -> None:
    model = RQVAE(8, CFG, levels=3, size=5)
    recon, codes, loss, residuals = model(torch.randn(10, 8), beta=0.25)
    assert recon.shape == (10, 8) and codes.shape == (10, 3) and loss.ndim == 0
    assert len(residuals) == 3 and residuals[0].shape == (10, 4)
    assert int(codes.max()) < 5


def kmeans_initialised(seed: int) -> tuple[torch.Tensor, RQVAE]:
    """Six separated blobs and a 2-level, 6-code RQ-VAE whose codebooks were k-means initialised on them."""
    torch.manual_seed(0)
    x = torch.from_numpy(blobs())
    model = RQVAE(8, CFG, levels=2, size=6)
    kmeans_init(model, x, seed=seed)
    return x, model


def test_kmeans_init_sets_codebooks_to_centroids_of_residuals() -> None:
    x, model = kmeans_initialised(seed=3)
    with torch.no_grad():
        z = model.encode(x).numpy()
    expected = kmeans_centroids(z, 6, seed=3)
    assert np.allclose(model.quantizer.codebooks[0].detach().numpy(), expected, atol=1e-5)
    _, codes, _, _ = model(x, beta=0.25)
    assert len(torch.unique(codes[:, 0])) == 6  # 6 separated blobs, 6 centroids: every code used


def test_dead_code_reset_revives_unused_codes() -> None:
    x, model = kmeans_initialised(seed=0)
    with torch.no_grad():
        model.quantizer.codebooks[0][2] = 1e4  # unreachable: no item picks it
    generator = torch.Generator().manual_seed(0)
    reset = reset_dead_codes(model, x, generator)
    assert reset[0] >= 1
    book = model.quantizer.codebooks[0].detach()
    assert book.abs().max() < 1e3
    with torch.no_grad():
        z = model.encode(x)
    assert torch.isclose(z, book[2]).all(1).any()  # moved onto some item's residual


def test_training_reduces_reconstruction_and_is_seeded() -> None:
    x = blobs()
    cfg = CFG.model_copy(update={"epochs": 30, "lr": 3e-3})
    _, a = train_rqvae(x, cfg, levels=2, size=6, seed=0)
    _, b = train_rqvae(x, cfg, levels=2, size=6, seed=0)
    assert a.history["recon"][-1] < a.history["recon"][0]
    assert np.array_equal(a.codes, b.codes) and a.recon_loss == b.recon_loss


def test_rqkmeans_residual_levels() -> None:
    x = blobs()
    result = fit_rqkmeans(x, levels=2, size=6, seed=0)
    assert result.codes.shape == (48, 2) and result.last_dist.shape == (48, 6)
    one_level = fit_rqkmeans(x, levels=1, size=6, seed=0)
    assert result.recon_loss < one_level.recon_loss
    assert set(result.tensors) == {"codebook_0", "codebook_1"}


def test_kmeans_with_fewer_points_than_codes_keeps_every_point() -> None:
    x = np.eye(3, dtype=np.float32)
    centroids = kmeans_centroids(x, 5, seed=0)
    assert centroids.shape == (5, 3)
    assert all(np.isclose(centroids, row).all(1).any() for row in x)


def test_reassign_moves_to_nearest_free_code() -> None:
    codes = np.array([[0, 1], [0, 1], [0, 2], [1, 1]])
    dist = np.array([[5, 0.1, 9, 1], [5, 0.2, 0.3, 2], [9, 9, 0, 9], [0, 0, 0, 0]], np.float32)
    out = reassign(codes, dist)
    # row 0 is closer to code 1 and keeps it; row 1's next choice (2) is taken by row 2, so it gets 3
    assert out.tolist() == [[0, 1], [0, 3], [0, 2], [1, 1]]
    assert collision_rate(out) == 0


def test_extra_level_ranks_by_distance_and_pads_unique_items() -> None:
    codes = np.array([[0, 1], [0, 1], [1, 0]])
    dist = np.array([[0, 0.9], [0, 0.1], [0.5, 0]], np.float32)
    assert extra_level(codes, dist).tolist() == [[0, 1, 1], [0, 1, 0], [1, 0, 0]]


def test_resolve_falls_back_to_extra_level_when_a_prefix_is_full() -> None:
    codes = np.zeros((3, 2), np.int64)  # three items, one prefix, only 2 last-level codes
    dist = np.array([[0, 1], [0.5, 1], [0.7, 2]], np.float32)
    out = resolve(codes, dist, "reassign")
    assert out.shape == (3, 3) and collision_rate(out) == 0
    assert resolve(np.array([[0, 0], [0, 1]]), dist[:2], "reassign").shape == (2, 2)


def test_utilisation_and_sid_string() -> None:
    assert utilisation(np.array([[0, 1], [1, 1], [3, 1]]), 4) == [0.75, 0.25]
    # level 0: four codes used once each -> 4; level 1: one code -> 1; level 2: counts 3:1 -> exp(H) = 1.75
    assert perplexity(np.array([[0, 1, 0], [1, 1, 0], [3, 1, 0], [4, 1, 1]])) == [4.0, 1.0, 1.75]
    assert sid_string([12, 200, 7]) == "<a_12><b_200><c_7>"
    assert sid_string([1, 2, 3, 0]) == "<a_1><b_2><c_3><d_0>"


def test_co_consumption_ratio_by_hand() -> None:
    first = np.array([0, 0, 1, 1])
    # pairs: (0,1) same code, (2,3) same code, (0,2) different; 3 of 6 pairs co-consumed, 2 of 2 same-code ones
    co = co_consumption(first, [[0, 1], [2, 3], [0, 2], [1]])
    assert co["co_consumed_pairs"] == 3
    assert co["rate_same_code"] == 1.0 and co["rate_random"] == 0.5 and co["ratio"] == 2.0
