"""Training and retrieval for every multi-interest model: early stopping on validation NDCG@10 of the
merged lists (full ranking), a resumable checkpoint at every evaluation, the best weights in `model.pt`."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genrec.artifacts import atomic_output
from genrec.data.tensors import ndcg_at
from genrec.multi.base import MultiInterestBase, Retrieval, pairwise_cosine
from genrec.multi.config import MergeRule, ModelConfig
from genrec.multi.dmi import DMI
from genrec.multi.gemirec import GemiRec
from genrec.multi.merge import merge
from genrec.multi.ulim import ULIM
from genrec.progress import progress_bar

EVAL_BATCH = 256


@dataclass
class ModelInputs:
    """What a model is built from besides its config: item ids (row order), item categories (1..C, for ULIM
    and coverage) and GemiRec's seeded item codes (-1 = none)."""

    item_ids: list[str]
    categories: torch.Tensor
    item_codes: torch.Tensor | None = None


def build_model(cfg: ModelConfig, inputs: ModelInputs) -> nn.Module:
    n = len(inputs.item_ids)
    if cfg.model == "gemirec" and cfg.dictionary:
        return GemiRec(n, cfg, inputs.item_codes)
    if cfg.model == "ulim":
        return ULIM(n, cfg, inputs.categories)
    if cfg.model == "dmi" and cfg.diffusion:
        return DMI(n, cfg)
    return MultiInterestBase(n, cfg)


def retrieve_all(model: nn.Module, histories: torch.Tensor, rule: MergeRule, k: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """[U, k] merged item columns (0-based) and [U] interest collapse (mean pairwise cosine)."""
    tops, collapse = retrieve_rules(model, histories, (rule,), k)
    return tops[rule], collapse


@torch.no_grad()
def retrieve_rules(model: nn.Module, histories: torch.Tensor, rules: Sequence[MergeRule], k: int
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each rule's [U, k] merged item columns from one retrieval pass, and the [U] interest collapse."""
    model.eval()
    tops: dict[str, list[torch.Tensor]] = {rule: [] for rule in rules}
    collapse = []
    for start in range(0, len(histories), EVAL_BATCH):
        out: Retrieval = model.retrieve(histories[start:start + EVAL_BATCH])
        for rule in rules:
            tops[rule].append(merge(out.scores, out.weights, rule, k))
        collapse.append(pairwise_cosine(out.vectors))
    return {rule: torch.cat(parts) for rule, parts in tops.items()}, torch.cat(collapse)


def coverage_at(top: torch.Tensor, categories: torch.Tensor, k: int = 10) -> float:
    """Mean number of distinct categories among each list's first k items."""
    cats = categories[top[:, :k]]
    return float(np.mean([len(set(row)) for row in cats.tolist()]))


@dataclass
class FitResult:
    model: nn.Module
    summary: dict = field(default_factory=dict)


def _fingerprint(cfg: ModelConfig, inputs: ModelInputs, histories: torch.Tensor, rule: MergeRule) -> str:
    """A checkpoint resumes only with the same items, data and trajectory-shaping settings."""
    config = cfg.model_dump(exclude={"threads", "epochs", "patience"})
    digest = hashlib.sha256(json.dumps([config, rule, inputs.item_ids], sort_keys=True).encode())  # field order-free
    digest.update(histories.numpy().tobytes())
    digest.update(inputs.categories.numpy().tobytes())
    if inputs.item_codes is not None:
        digest.update(inputs.item_codes.numpy().tobytes())
    return digest.hexdigest()


def fit(cfg: ModelConfig, inputs: ModelInputs, train_h: torch.Tensor, train_t: torch.Tensor,
        valid_h: torch.Tensor, valid_t: torch.Tensor, rule: MergeRule, out_dir: Path) -> FitResult:
    """Train under `cfg.threads` threads; `out_dir/checkpoint.pt` lets a killed run resume to the same result."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _fit(cfg, inputs, train_h, train_t, valid_h, valid_t, rule, Path(out_dir))
    finally:
        torch.set_num_threads(threads)


def _fit(cfg: ModelConfig, inputs: ModelInputs, train_h: torch.Tensor, train_t: torch.Tensor,
         valid_h: torch.Tensor, valid_t: torch.Tensor, rule: MergeRule, out_dir: Path) -> FitResult:
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg, inputs)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_path, fingerprint = out_dir / "checkpoint.pt", _fingerprint(cfg, inputs, train_h, rule)
    state = {"epoch": 0, "best_ndcg": -1.0, "best_epoch": 0, "best_state": copy.deepcopy(model.state_dict()),
             "history": [], "wall_s": 0.0}
    if ckpt_path.is_file():
        saved = torch.load(ckpt_path, weights_only=False)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved.pop("model"))
            optim.load_state_dict(saved.pop("optim"))
            generator.set_state(saved.pop("generator"))
            torch.set_rng_state(saved.pop("torch_rng"))
            saved.pop("fingerprint")
            state.update(saved)
    resumed_from, start = state["epoch"], time.perf_counter() - state["wall_s"]
    label = f"{cfg.model} epochs"
    with progress_bar() as bar:
        task = bar.add_task(label, total=cfg.epochs, completed=state["epoch"], status="")
        patience_left = state["epoch"] - state["best_epoch"] < cfg.patience * cfg.eval_every
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1 if patience_left else 0):
            model.train()
            total = 0.0
            for idx in torch.randperm(len(train_t), generator=generator).split(cfg.batch_size):
                loss = model.loss(train_h[idx], train_t[idx], generator)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                total += loss.item() * len(idx)
            dead = model.end_epoch(generator) if isinstance(model, GemiRec) else 0
            bar.advance(task)
            if epoch % cfg.eval_every and epoch != cfg.epochs:
                continue
            top, _ = retrieve_all(model, valid_h, rule, 10)
            ndcg = ndcg_at(top + 1, valid_t)
            state["history"].append({"epoch": epoch, "loss": round(total / len(train_t), 4),
                                     "valid_ndcg@10": round(ndcg, 5), **({"dead_codes": dead} if dead else {})})
            if ndcg > state["best_ndcg"]:
                state.update(best_ndcg=ndcg, best_epoch=epoch, best_state=copy.deepcopy(model.state_dict()))
            state.update(epoch=epoch, wall_s=time.perf_counter() - start)
            with atomic_output(ckpt_path) as tmp:
                torch.save({**state, "fingerprint": fingerprint, "model": model.state_dict(), "optim": optim.state_dict(),
                            "generator": generator.get_state(), "torch_rng": torch.get_rng_state()}, tmp)
            status = f"loss {total / len(train_t):.3f} valid ndcg@10 {ndcg:.4f} (best {state['best_ndcg']:.4f} @ {state['best_epoch']})"
            bar.update(task, status=status)
            bar.console.log(f"{cfg.model} epoch {epoch}: {status}")
            if epoch - state["best_epoch"] >= cfg.patience * cfg.eval_every:
                break
    model.load_state_dict(state["best_state"])
    summary = {"best_epoch": state["best_epoch"], "best_valid_ndcg@10": round(state["best_ndcg"], 6),
               "epochs_run": state["epoch"], "resumed_from_epoch": resumed_from,
               "train_wall_s": round(state["wall_s"], 1), "train_examples": len(train_t),
               "params": sum(p.numel() for p in model.parameters()), "history": state["history"]}
    return FitResult(model, summary)


def save_model(path: Path, model: nn.Module, cfg: ModelConfig, inputs: ModelInputs, extra: dict) -> None:
    with atomic_output(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "config": cfg.model_dump(), "item_ids": inputs.item_ids,
                    "categories": inputs.categories, "item_codes": inputs.item_codes, **extra}, tmp)


def load_model(path: Path) -> tuple[nn.Module, ModelInputs, dict]:
    """The saved model (eval mode), its build inputs and the rest of the saved dict."""
    from pydantic import TypeAdapter

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `genrec multi train` first")
    saved = torch.load(path, weights_only=False)
    cfg = TypeAdapter(ModelConfig).validate_python(saved.pop("config"))
    inputs = ModelInputs(saved.pop("item_ids"), saved.pop("categories"), saved.pop("item_codes"))
    model = build_model(cfg, inputs)
    model.load_state_dict(saved.pop("state_dict"))
    model.eval()
    return model, inputs, saved
