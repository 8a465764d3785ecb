"""The label stage: behavioural labels -> reward model -> held-out AUCs -> every mined interest scored.

Reads `mine/interests.parquet` and the training part of the sequences (never a valid or test target);
writes `label/reward_model/` and `label/interests_labelled.parquet` (the mined rows + score, label,
threshold; label = score >= the threshold that maximises F1 on held-out entities). With
`user_interests_from_items`, users without mined interests get derived rows (`genrec.reward.derived`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.artifacts import Manifest, RunPaths, atomic_output, stage_run
from genrec.data import load_items, load_sequences, training_items
from genrec.progress import console
from genrec.reward.config import LabelConfig
from genrec.reward.labels import (INTEREST_COLUMNS, build_evidence, candidate_pairs, history_context, item_texts,
                                  support_labels)


def inputs(config: LabelConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    return [paths.interests, paths.items, paths.sequences]


def load_interests(path: Path, items: pd.DataFrame, sequences: pd.DataFrame) -> pd.DataFrame:
    """Read mined interests, failing clearly on missing columns, unknown kinds or unknown entity ids."""
    frame = pd.read_parquet(path)
    missing = [c for c in INTEREST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (expected {INTEREST_COLUMNS})")
    frame["entity_id"] = frame["entity_id"].astype(str)
    bad_kind = sorted(set(frame["kind"]) - {"user", "item"})
    if bad_kind:
        raise ValueError(f"{path}: unknown kind(s) {bad_kind}; expected 'user' or 'item'")
    known = {"item": set(items["item_id"].astype(str)), "user": set(sequences["user_id"].astype(str))}
    for kind, ids in known.items():
        unknown = sorted(set(frame.loc[frame["kind"] == kind, "entity_id"]) - ids)
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} unknown {kind} id(s), e.g. {unknown[:5]}")
    frame = frame[frame["interest"].astype(str).str.strip() != ""].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"{path}: no interests to label")
    return frame


def ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision); NaN when only one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(y)) < 2:
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    return {"roc_auc": float(roc_auc_score(y, score)), "pr_auc": float(average_precision_score(y, score))}


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The score threshold with the highest F1 (labels are score >= threshold)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, score)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def evaluate(pairs: pd.DataFrame, score: np.ndarray, cosine: np.ndarray) -> dict[str, float]:
    """Reward-model and plain-cosine AUCs on a set of pairs, overall and per entity kind."""
    y = pairs["label"].to_numpy()
    out: dict[str, float] = {"pairs": len(pairs), "positive_rate": float(y.mean()) if len(y) else float("nan")}
    for name, mask in (("", np.ones(len(y), bool)), *((f"{k}_", (pairs["kind"] == k).to_numpy()) for k in ("user", "item"))):
        model, base = ranking_metrics(y[mask], score[mask]), ranking_metrics(y[mask], cosine[mask])
        out.update({f"{name}{k}": v for k, v in model.items()})
        out.update({f"{name}cosine_{k}": v for k, v in base.items()})
    return out


def scoring_contexts(frame: pd.DataFrame, train_items: dict[str, list[str]], texts: dict[str, str],
                     titles: dict[str, str]) -> list[str]:
    """The context each mined row is scored against: all of a user's training items, or the item's text."""
    return [history_context(train_items.get(e, []), titles) if k == "user" else texts[e]
            for k, e in zip(frame["kind"], frame["entity_id"])]


def run(config: LabelConfig, run_dir: Path) -> Manifest:
    """Label pairs from behaviour, train and evaluate the reward model, score and label every mined interest."""
    import torch

    from genrec.reward.model import PairHead, RewardModel, TextEncoder, load_encoder, train_head

    paths = RunPaths(Path(run_dir))
    with stage_run("label", config, paths.stage_dir("label"), inputs(config, run_dir)) as manifest:
        torch.set_num_threads(config.threads)
        items, sequences = load_items(run_dir), load_sequences(run_dir)
        interests = load_interests(paths.interests, items, sequences)
        train_items = training_items(sequences)
        texts = item_texts(items)
        titles = dict(zip(items["item_id"].astype(str), items["title"].fillna("").astype(str), strict=True))

        console.print("label: building behavioural labels")
        encoder = TextEncoder(load_encoder(config.encoder), batch_size=config.batch_size)
        evidence = build_evidence(train_items, texts, titles, config)
        pairs = candidate_pairs(interests, evidence, config)
        if pairs.empty:
            raise ValueError("no mined interest belongs to a labellable entity (a user with >= 2 training items "
                             "or an item bought in training together with another item)")
        pairs = support_labels(pairs, evidence, texts, encoder, config)
        train = pairs[pairs["fold"] == "train"]
        holdout = pairs[pairs["fold"] == "holdout"]
        if train["label"].nunique() < 2:
            raise ValueError(f"training pairs have a single label ({train['label'].iloc[0]}); "
                             "lower label.null_quantile or mine more interests")

        if config.finetune is not None:
            from genrec.reward.finetune import finetune_encoder

            console.print(f"label: fine-tuning the encoder on {min(len(train), config.finetune.max_pairs)} pairs")
            encoder = TextEncoder(finetune_encoder(encoder.model, train, config.finetune, config.seed),
                                  batch_size=config.batch_size)
        console.print(f"label: training the head on {len(train)} pairs")
        u, v = encoder(pairs["context"].tolist()), encoder(pairs["interest"].tolist())
        is_train = (pairs["fold"] == "train").to_numpy()
        head: PairHead = train_head(u[is_train], v[is_train], pairs.loc[is_train, "label"].to_numpy(), config.head, config.seed)
        model = RewardModel(encoder, head, {"encoder": config.encoder})
        score = model.score_embeddings(u, v)
        cosine = (u * v).sum(axis=1)

        threshold_from = "holdout" if holdout["label"].nunique() == 2 else "train"  # tiny runs may lack one
        chosen = (pairs["fold"] == threshold_from).to_numpy()
        threshold = best_f1_threshold(pairs.loc[chosen, "label"].to_numpy(), score[chosen])
        model.meta.update(threshold=threshold, threshold_from=threshold_from)

        console.print(f"label: scoring {len(interests)} mined interests")
        scores = model.score(scoring_contexts(interests, train_items, texts, titles), interests["interest"].tolist())
        labelled = interests.assign(score=scores.astype(float), label=(scores >= threshold).astype(int),
                                    threshold=threshold)
        kept = int(labelled["label"].sum())
        derived = labelled.iloc[:0]
        if config.user_interests_from_items:
            from genrec.reward.derived import derive_user_interests

            console.print("label: deriving interests of unmined users from their training items")
            derived = derive_user_interests(labelled, train_items, titles, model, config.user_interests_from_items)
            labelled = pd.concat([labelled, derived], ignore_index=True)
        with atomic_output(paths.interests_labelled) as tmp:
            labelled.to_parquet(tmp, index=False)
        shutil.rmtree(paths.reward_model, ignore_errors=True)  # os.replace cannot overwrite a full folder
        with atomic_output(paths.reward_model) as tmp:
            model.save(tmp, encoder_finetuned=config.finetune is not None)

        manifest.outputs = [str(paths.interests_labelled), str(paths.reward_model)]
        manifest.counts = {
            "interests": len(interests), "kept": kept,
            "derived_users": int(derived["entity_id"].nunique()), "derived_interests": len(derived),
            "pairs": len(pairs), "train_pairs": len(train), "holdout_pairs": len(holdout),
            "positive_pairs": int(pairs["label"].sum()), "own_pairs": int(pairs["own"].sum()),
            "own_positive_pairs": int(pairs.loc[pairs["own"], "label"].sum()),
            "foreign_positive_pairs": int(pairs.loc[~pairs["own"], "label"].sum()),
        }
        manifest.metrics = {"threshold": threshold, "threshold_from": threshold_from,
                            "holdout": evaluate(holdout, score[~is_train], cosine[~is_train]),
                            "train": evaluate(train, score[is_train], cosine[is_train])}
    return manifest
