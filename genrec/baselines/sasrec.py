"""SASRec (Kang & McAuley 2018): causal self-attention over the item history, trained with full-softmax
cross-entropy over every item at every position (logits = hidden @ item_emb.T), early-stopped on
validation NDCG@10 with full ranking. The reference sequential recommender every generative model is compared to.

Training data is each user's training items (everything before the validation target), rebuilt from the
`train` rows (first history item + every train target, in row order) and cut into windows of at most
`max_len` inputs, so each prediction sees at most the protocol's 20-item history and every training
target is predicted exactly once per epoch. Validation and test use the `valid` / `test` rows' histories.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from genrec.artifacts import atomic_output
from genrec.baselines.config import SASRecConfig
from genrec.config import DistillConfig
from genrec.data.tensors import PAD, encode, item_index, left_pad, ndcg_at, user_training_items
from genrec.progress import progress_bar
from genrec.train.soft_targets import ensemble_log_probs, soft_target_loss

EVAL_BATCH = 1024


@dataclass
class SASRecResult:
    """Test recommendations (user -> item ids, best first) and a training summary for the manifest."""

    recs: dict[str, list[str]]
    summary: dict = field(default_factory=dict)


class SASRec(nn.Module):
    """Item + learned positional embeddings, pre-LN causal transformer blocks, tied output embeddings."""

    def __init__(self, n_items: int, cfg: SASRecConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=PAD)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, dim_feedforward=cfg.hidden, dropout=cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.hidden)
        nn.init.normal_(self.item_emb.weight, std=cfg.hidden ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()

    def attention_mask(self, seq: torch.Tensor) -> torch.Tensor:
        """[B*heads, L, L] additive mask: causal, real positions never attend to padding (a padding query
        attends to itself only, so no row is fully masked)."""
        length = seq.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=seq.device)
        allowed = causal & ((seq != PAD)[:, None, :] | eye)
        mask = torch.zeros(allowed.shape, dtype=torch.float32, device=seq.device).masked_fill(~allowed, float("-inf"))
        return mask.repeat_interleave(self.heads, dim=0)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """Left-padded item indices [B, L] -> hidden states [B, L, d] (position t summarises items <= t)."""
        positions = torch.arange(seq.shape[1], device=seq.device)
        x = self.item_emb(seq) * math.sqrt(self.item_emb.embedding_dim) + self.pos_emb(positions)
        x = self.dropout(x) * (seq != PAD).unsqueeze(-1)
        return self.norm(self.encoder(x, mask=self.attention_mask(seq)))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over all real items (column j = item index j + 1)."""
        return hidden @ self.item_emb.weight[1:].T


def training_windows(sequences: pd.DataFrame, index: dict[str, int], max_len: int) -> torch.Tensor:
    """[W, max_len + 1] left-padded windows over every user's training items; each window's inputs are
    `w[:-1]`, its targets `w[1:]`. Consecutive windows of a user share one item, so every training target
    appears exactly once."""
    windows: list[list[int]] = []
    for items in user_training_items(sequences).values():
        seq = encode(items, index)
        end = len(seq)
        while end >= 2:
            windows.append(seq[max(0, end - max_len - 1):end])
            end -= max_len
    return left_pad(windows, max_len + 1)


def _split_rows(sequences: pd.DataFrame, split: str, index: dict[str, int], max_len: int
                ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    rows = sequences[sequences["split"] == split]
    histories = left_pad([encode(h, index) for h in rows["history"]], max_len)
    targets = torch.tensor(encode(list(rows["target"]), index), dtype=torch.int64)
    return rows["user_id"].astype(str).tolist(), histories, targets


@torch.no_grad()
def top_items(model: SASRec, histories: torch.Tensor, k: int) -> torch.Tensor:
    """[U, k] item indices (1-based), best first, from the hidden state of each history's last position."""
    model.eval()
    out = []
    for start in range(0, len(histories), EVAL_BATCH):
        hidden = model(histories[start:start + EVAL_BATCH])[:, -1]
        out.append(model.logits(hidden).topk(k, dim=1).indices + 1)
    return torch.cat(out)


@torch.no_grad()
def ensemble_top_items(models: Sequence[SASRec], histories: torch.Tensor, k: int) -> torch.Tensor:
    """[U, k] item indices (1-based), best first, by the models' mean log p(item | history) over all items: the
    full ranking of a seed ensemble (one model ranks as `top_items`, up to ties)."""
    for model in models:
        model.eval()
    out = []
    for start in range(0, len(histories), EVAL_BATCH):
        batch = histories[start:start + EVAL_BATCH]
        scores = ensemble_log_probs([model.logits(model(batch)[:, -1]) for model in models])
        out.append(scores.topk(k, dim=1).indices + 1)
    return torch.cat(out)


def load_sasrec(path: Path) -> tuple[SASRec, list[str]]:
    """A SASRec saved by `fit_and_recommend` (`model.pt`), in eval mode, and its item ids in index order."""
    saved = torch.load(path, map_location="cpu", weights_only=True)  # tensors, item ids, config: no pickled code
    model = SASRec(len(saved["item_ids"]), SASRecConfig(**saved["config"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved["item_ids"]


def ensemble_recommend(paths: Sequence[Path], sequences: pd.DataFrame, k: int) -> dict[str, list[str]]:
    """Top-k test recommendations of the saved SASRecs at `paths` ranked together (`ensemble_top_items`); the
    members must share one item table (same items, same order)."""
    loaded = [load_sasrec(Path(path)) for path in paths]
    item_ids = loaded[0][1]
    for path, (_, other) in zip(paths[1:], loaded[1:], strict=True):
        if other != item_ids:
            raise ValueError(f"{path}: another item table than {paths[0]}; ensemble members must share the items")
    models = [model for model, _ in loaded]
    index = {item: i + 1 for i, item in enumerate(item_ids)}
    users, histories, _ = _split_rows(sequences, "test", index, models[0].pos_emb.num_embeddings)
    top = ensemble_top_items(models, histories, k) - 1
    return {user: [item_ids[i] for i in row] for user, row in zip(users, top.tolist(), strict=True)}


def load_teachers(cfg: SASRecConfig, item_ids: Sequence[str]) -> list[SASRec]:
    """The SASRecs `cfg.distill` names (none without it), refusing one trained on another item table."""
    teachers = []
    for path in cfg.distill.teachers if cfg.distill else []:
        if not Path(path).is_file():
            raise FileNotFoundError(f"baselines.sasrec.distill.teachers: {path} does not exist")
        model, items = load_sasrec(Path(path))
        if items != list(item_ids):
            raise ValueError(f"SASRec teacher {path} was trained on another item table than this run's items")
        teachers.append(model.requires_grad_(False))
    return teachers


def _train_epoch(model: SASRec, optim: torch.optim.Optimizer, windows: torch.Tensor, batch_size: int,
                 generator: torch.Generator, teachers: Sequence[SASRec] = (),
                 distill: DistillConfig | None = None) -> float:
    """One pass over shuffled windows; cross-entropy over all items at every non-padding input position (mixed
    with the divergence from the `teachers`' mean distribution when distilling)."""
    model.train()
    total, count = 0.0, 0
    for idx in torch.randperm(len(windows), generator=generator).split(batch_size):
        batch = windows[idx]
        inputs, targets = batch[:, :-1], batch[:, 1:]
        keep = inputs != PAD  # left padding: a window's first real item is an input, never a target
        logits = model.logits(model(inputs)[keep])
        if teachers:
            with torch.no_grad():
                soft = ensemble_log_probs([t.logits(t(inputs)[keep]) for t in teachers], distill.temperature)
            loss = soft_target_loss(logits, targets[keep] - 1, soft, distill.weight, distill.temperature) / len(logits)
        else:
            loss = nn.functional.cross_entropy(logits, targets[keep] - 1)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        total += loss.item() * int(keep.sum())
        count += int(keep.sum())
    return total / max(count, 1)


def _fingerprint(cfg: SASRecConfig, item_ids: np.ndarray, windows: torch.Tensor) -> str:
    """What a checkpoint must match to be resumed: the items, the windows and every setting that shapes the
    training trajectory (not `threads`, nor the schedule bounds `epochs` / `patience`, which may be changed
    to extend or cut short a resumed run)."""
    config = cfg.model_dump(mode="json", exclude={"threads", "epochs", "patience"})
    digest = hashlib.sha256(json.dumps([config, item_ids.tolist()], sort_keys=True).encode())  # field order-free
    digest.update(windows.numpy().tobytes())
    for teacher in cfg.distill.teachers if cfg.distill else []:
        digest.update(Path(teacher).read_bytes())  # retrained teachers: start over
    return digest.hexdigest()


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The training state saved at the last evaluation, if it belongs to this config and data."""
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=False)
    return state if state.get("fingerprint") == fingerprint else None


def fit_and_recommend(cfg: SASRecConfig, items: pd.DataFrame, sequences: pd.DataFrame, k: int,
                      out_dir: Path) -> SASRecResult:
    """Train SASRec with early stopping on validation NDCG@10, save the best weights to `out_dir/model.pt`,
    and return the top-k test recommendations (history items are not filtered, as for generative models).

    The full training state is saved to `out_dir/checkpoint.pt` at every evaluation; a killed run with the
    same config and data resumes from it (RNG states included, so the result equals an uninterrupted run);
    `epochs` and `patience` may differ on resume, to extend a run or to cut it short at the last evaluation.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _fit(cfg, items, sequences, k, Path(out_dir))
    finally:
        torch.set_num_threads(threads)


def _fit(cfg: SASRecConfig, items: pd.DataFrame, sequences: pd.DataFrame, k: int, out_dir: Path) -> SASRecResult:
    """`fit_and_recommend` under the configured thread count."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    index = item_index(items)
    item_ids = np.array(list(index), dtype=object)
    if k > len(item_ids):
        raise ValueError(f"baselines.k={k} exceeds the number of items ({len(item_ids)})")
    windows = training_windows(sequences, index, cfg.max_len)
    if len(windows) == 0:
        raise ValueError("sequences.parquet: no train rows to fit SASRec on")
    _, valid_hist, valid_targets = _split_rows(sequences, "valid", index, cfg.max_len)
    test_users, test_hist, _ = _split_rows(sequences, "test", index, cfg.max_len)

    teachers = load_teachers(cfg, item_ids.tolist())
    model = SASRec(len(item_ids), cfg)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_path, fingerprint = out_dir / "checkpoint.pt", _fingerprint(cfg, item_ids, windows)
    state = {"epoch": 0, "best_ndcg": -1.0, "best_epoch": 0, "best_state": copy.deepcopy(model.state_dict()),
             "history": [], "wall_s": 0.0}
    resumed = _load_checkpoint(ckpt_path, fingerprint)
    if resumed is not None:
        model.load_state_dict(resumed.pop("model"))
        optim.load_state_dict(resumed.pop("optim"))
        generator.set_state(resumed.pop("generator"))
        torch.set_rng_state(resumed.pop("torch_rng"))
        state.update(resumed)
    resumed_from, wall_before = state["epoch"], state["wall_s"]
    start = time.perf_counter() - state["wall_s"]
    with progress_bar() as bar:
        task = bar.add_task("SASRec epochs", total=cfg.epochs, completed=state["epoch"], status="")
        patience_left = state["epoch"] - state["best_epoch"] < cfg.patience
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1 if patience_left else 0):
            loss = _train_epoch(model, optim, windows, cfg.batch_size, generator, teachers, cfg.distill)
            bar.advance(task)
            if epoch % cfg.eval_every and epoch != cfg.epochs:
                continue
            ndcg = ndcg_at(top_items(model, valid_hist, 10), valid_targets)
            state["history"].append({"epoch": epoch, "loss": round(loss, 4), "valid_ndcg@10": round(ndcg, 5)})
            if ndcg > state["best_ndcg"]:
                state.update(best_ndcg=ndcg, best_epoch=epoch, best_state=copy.deepcopy(model.state_dict()))
            state.update(epoch=epoch, wall_s=time.perf_counter() - start)
            with atomic_output(ckpt_path) as tmp:
                torch.save({**state, "fingerprint": fingerprint, "model": model.state_dict(),
                            "optim": optim.state_dict(), "generator": generator.get_state(),
                            "torch_rng": torch.get_rng_state()}, tmp)
            status = f"loss {loss:.3f} valid ndcg@10 {ndcg:.4f} (best {state['best_ndcg']:.4f} @ {state['best_epoch']})"
            bar.update(task, status=status)
            bar.console.log(f"SASRec epoch {epoch}: {status}")
            if epoch - state["best_epoch"] >= cfg.patience:
                break

    model.load_state_dict(state["best_state"])
    with atomic_output(out_dir / "model.pt") as tmp:
        torch.save({"state_dict": state["best_state"], "item_ids": item_ids.tolist(),
                    "config": cfg.model_dump(mode="json")},
                   tmp)
    top = top_items(model, test_hist, k) - 1
    recs = {user: item_ids[row].tolist() for user, row in zip(test_users, top.numpy(), strict=True)}
    summary = {"best_epoch": state["best_epoch"], "best_valid_ndcg@10": round(state["best_ndcg"], 6),
               "epochs_run": state["epoch"], "resumed_from_epoch": resumed_from,
               "train_wall_s": round(state["wall_s"], 1), "train_wall_s_before_resume": round(wall_before, 1),
               "train_windows": len(windows),
               "train_targets": int((windows[:, :-1] != PAD).sum()),
               "params": sum(p.numel() for p in model.parameters()), "history": state["history"]}
    return SASRecResult(recs, summary)
