"""The reward model: head training, the batched scoring API, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genrec.reward import RewardModel
from genrec.reward.config import DEFAULT_ENCODER, HeadConfig
from genrec.reward.model import PairHead, TextEncoder, load_encoder, train_head


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(load_encoder(DEFAULT_ENCODER), batch_size=16)


def _separable(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs whose label is whether the interest vector is close to the context vector."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, dim)).astype(np.float32)
    y = rng.integers(0, 2, size=n)
    v = np.where(y[:, None] == 1, u + 0.3 * rng.normal(size=(n, dim)), rng.normal(size=(n, dim))).astype(np.float32)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return u, v, y


def test_train_head_learns_a_separable_task() -> None:
    from sklearn.metrics import roc_auc_score

    u, v, y = _separable(600, 16, seed=0)
    head = train_head(u[:400], v[:400], y[:400], HeadConfig(hidden=32, epochs=30, batch_size=64), seed=0)
    model = RewardModel(None, head, {})  # type: ignore[arg-type]  # scoring from embeddings needs no encoder
    assert roc_auc_score(y[400:], model.score_embeddings(u[400:], v[400:])) > 0.95


def test_encoder_caches_and_normalises(encoder: TextEncoder) -> None:
    out = encoder(["aquarium filter", "soldering iron", "aquarium filter"])
    assert out.shape == (3, encoder.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out[0], out[2])
    cached = len(encoder._cache)
    encoder(["soldering iron"])
    assert len(encoder._cache) == cached


def test_score_shapes_and_errors(encoder: TextEncoder) -> None:
    model = RewardModel(encoder, PairHead(encoder.dim, 8, 0.0), {"encoder": DEFAULT_ENCODER})
    scores = model.score(["Aquarium heater; Fish tank light", "Soldering iron"], ["fish keeping", "electronics"])
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert np.all((scores > 0) & (scores < 1))
    assert model.score([], []).shape == (0,)
    with pytest.raises(ValueError, match="2 contexts but 1 interests"):
        model.score(["a", "b"], ["x"])


def test_save_load_round_trip_gives_identical_scores(encoder: TextEncoder, tmp_path: Path) -> None:
    u, v, y = _separable(64, encoder.dim, seed=1)
    head = train_head(u, v, y, HeadConfig(hidden=16, epochs=2), seed=0)
    model = RewardModel(encoder, head, {"encoder": DEFAULT_ENCODER, "threshold": 0.42})
    model.save(tmp_path / "rm", encoder_finetuned=False)
    loaded = RewardModel.load(tmp_path / "rm")
    contexts = ["Wood chisel set; Orbital sander", "Petri dishes sterile"] * 3
    interests = ["home carpentry", "microbiology", "fish", "electronics", "lab safety", "furniture"]
    assert np.array_equal(model.score(contexts, interests), loaded.score(contexts, interests))
    assert loaded.threshold == 0.42


def test_load_rejects_a_folder_that_is_not_a_reward_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a reward model folder"):
        RewardModel.load(tmp_path)


def test_unknown_encoder_path_is_named() -> None:
    with pytest.raises(FileNotFoundError, match="label.encoder"):
        load_encoder("/nonexistent/encoder")


def test_head_never_ends_below_its_cosine_start_on_cosine_determined_labels() -> None:
    """Labels fully decided by cosine similarity: whatever the MLP learns, the kept epoch ranks fresh pairs
    as well as cosine does (the held-back selection keeps the cosine start if training drifts)."""
    import torch
    from sklearn.metrics import roc_auc_score

    from genrec.reward.config import HeadConfig
    from genrec.reward.model import train_head

    rng = np.random.default_rng(0)

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = rng.normal(size=(n, 16)).astype(np.float32)
        v = (u * rng.uniform(-1, 1, size=(n, 1)) + rng.normal(size=(n, 16))).astype(np.float32)
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return u, v, ((u * v).sum(axis=1) > 0.2).astype(np.int64)

    u, v, y = pairs(600)
    head = train_head(u, v, y, HeadConfig(hidden=32, epochs=8, lr=1e-2), seed=0)
    fu, fv, fy = pairs(400)
    with torch.no_grad():
        scores = head(torch.from_numpy(fu), torch.from_numpy(fv)).numpy()
    assert roc_auc_score(fy, scores) > 0.97
