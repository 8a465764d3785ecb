"""Plots of the reproduction report (matplotlib PNGs, small enough to commit), regenerated from what the
benchmarks and runs already wrote; it trains nothing.

    python scripts/plot_report.py                      # every plot it has data for -> benchmarks/plots/
    python scripts/plot_report.py --run runs/demo --run runs/mined_scientific

- `sasrec_valid_ndcg.png`: SASRec validation NDCG@10 per epoch (`results/baseline_sasrec_<dataset>.json`).
- `sft_valid.png`: SFT validation NDCG@10 and loss over training steps, per benchmark variant
  (`results/sft_<dataset>.json`) and per run (`<run>/sft/manifest.json`).
- `grpo_rewards.png`: mean GRPO reward terms per step (`results/grpo_<dataset>.json`, `<run>/grpo/manifest.json`);
  long curves also get a 10-step running mean.
- `codebook_utilisation.png`: per SID level, the share of codes used and the perplexity of the code
  distribution over items (exp of its entropy) as a share of the codebook, for every SID map the SID
  benchmark (`results/sid_<dataset>.json`) or a run (`<run>/sid/sid_map.parquet`) wrote. Utilisation alone
  is 100% for every map here; perplexity shows how evenly the items spread over the codes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from genrec.artifacts import read_manifest  # noqa: E402
from genrec.config import REPO_ROOT  # noqa: E402

Curve = tuple[list[float], list[float]]


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _dataset(path: Path, prefix: str) -> str:
    return path.stem.removeprefix(prefix)


def sasrec_curves(results: Path) -> dict[str, Curve]:
    """dataset -> (epochs, validation NDCG@10) of the SASRec baseline."""
    curves = {}
    for path in sorted(results.glob("baseline_sasrec_*.json")):
        history = _load(path).get("summary", {}).get("history", [])
        points = [(h["epoch"], h["valid_ndcg@10"]) for h in history if "valid_ndcg@10" in h]
        if points:
            curves[_dataset(path, "baseline_sasrec_")] = ([p[0] for p in points], [p[1] for p in points])
    return curves


def sft_curves(results: Path, runs: list[Path]) -> dict[str, list[dict]]:
    """label -> validation curve points ({step, loss, ndcg@10}) of each SFT variant and run."""
    curves = {}
    for path in sorted(results.glob("sft_*.json")):
        for name, variant in _load(path).get("variants", {}).items():
            if isinstance(variant, dict) and variant.get("valid_curve"):
                curves[f"{_dataset(path, 'sft_')} {name}"] = variant["valid_curve"]
    for run in runs:
        manifest = read_manifest(run / "sft")
        if manifest is not None and manifest.metrics.get("valid_curve"):
            curves[f"run {run.name}"] = manifest.metrics["valid_curve"]
    return curves


def grpo_curves(results: Path, runs: list[Path]) -> dict[str, dict[str, list[float]]]:
    """label -> reward curves ({"step": [...], <term>: [...]}) of each GRPO benchmark variant and run."""
    curves = {}
    for path in sorted(results.glob("grpo_*.json")):
        for name, training in (_load(path).get("training") or {}).items():
            if isinstance(training, dict) and training.get("reward_curves", {}).get("step"):
                curves[f"{_dataset(path, 'grpo_')} {name}"] = training["reward_curves"]
    for run in runs:
        manifest = read_manifest(run / "grpo")
        if manifest is not None and manifest.metrics.get("reward_curves", {}).get("step"):
            curves[f"run {run.name}"] = manifest.metrics["reward_curves"]
    return curves


def sid_maps(results: Path, runs: list[Path]) -> dict[str, Path]:
    """label -> sid_map.parquet of every SID benchmark variant and run that has one on disk."""
    maps = {}
    for path in sorted(results.glob("sid_*.json")):
        for name, variant in _load(path).get("variants", {}).items():
            sid_map = REPO_ROOT / str(variant.get("sid_map", ""))
            if variant.get("sid_map") and sid_map.is_file():
                maps[f"{_dataset(path, 'sid_')} {name}"] = sid_map
    for run in runs:
        if (run / "sid" / "sid_map.parquet").is_file():
            maps[f"run {run.name}"] = run / "sid" / "sid_map.parquet"
    return maps


def code_usage(sid_map: Path, codebook_size: int) -> tuple[list[float], list[float]]:
    """Per level: share of the codebook used, and perplexity of the items' codes as a share of the codebook
    (the sid stage's own metrics, over the levels every item has)."""
    import numpy as np
    import pandas as pd

    from genrec.sid.metrics import perplexity, utilisation

    codes = [list(c) for c in pd.read_parquet(sid_map, columns=["codes"])["codes"]]
    levels = min(len(c) for c in codes)
    array = np.array([c[:levels] for c in codes])
    return utilisation(array, codebook_size), [p / codebook_size for p in perplexity(array)]


def plot_sasrec(curves: dict[str, Curve], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for dataset, (epochs, ndcg) in curves.items():
        ax.plot(epochs, ndcg, marker="o", markersize=3, label=dataset)
    ax.set(xlabel="epoch", ylabel="validation NDCG@10", title="SASRec (full-softmax CE): validation NDCG@10")
    ax.legend(), ax.grid(alpha=0.3)
    _save(fig, out)


def plot_sft(curves: dict[str, list[dict]], out: Path) -> None:
    """One row per dataset (the label's first word; run folders form their own row): validation NDCG@10 and loss
    per step, with the legend beside the row so many variants stay readable."""
    groups: dict[str, dict[str, list[dict]]] = {}
    for label, points in curves.items():
        group, _, name = label.partition(" ")
        groups.setdefault(group, {})[name or label] = points
    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 3.6 * len(groups)), squeeze=False)
    for (group, members), (left, right) in zip(groups.items(), axes, strict=True):
        colours = _colours(members)
        for name, points in members.items():
            steps = [p["step"] for p in points]
            style = dict(marker="o", markersize=3, color=colours[name], label=name)
            left.plot(steps, [p.get("ndcg@10", float("nan")) for p in points], **style)
            right.plot(steps, [p.get("loss", float("nan")) for p in points], **style)
        left.set(xlabel="training step", ylabel="validation NDCG@10", title=f"{group}: SFT validation NDCG@10 (beam 20)")
        right.set(xlabel="training step", ylabel="validation loss (SID tokens)", title=f"{group}: SFT validation loss")
        for ax in (left, right):
            ax.grid(alpha=0.3)
        right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    _save(fig, out)


def plot_grpo(curves: dict[str, dict[str, list[float]]], out: Path) -> None:
    """One panel per reward term, one colour per GRPO variant (shared legend beside the grid); long noisy curves are
    drawn faint with a bold 10-step mean."""
    import pandas as pd

    terms = sorted({t for c in curves.values() for t in c if t != "step"} - {"kl"})
    cols = min(3, len(terms))
    rows = math.ceil(len(terms) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    colours = _colours(curves)
    for ax, term in zip(axes.flat, terms, strict=False):
        for label, curve in curves.items():
            values = pd.Series([float("nan") if v is None else v for v in curve.get(term, [])], dtype=float)
            if values.empty:
                continue
            steps = curve["step"][:len(values)]
            if len(values) > 30:  # per-step means over a few prompts are noisy: faint raw, bold 10-step mean
                ax.plot(steps, values, linewidth=0.6, alpha=0.3, color=colours[label])
                values = values.rolling(10, min_periods=1).mean()
            ax.plot(steps, values, label=label, linewidth=1.4, color=colours[label])
        ax.set(title=term, xlabel="GRPO step")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(terms):]:
        ax.axis("off")
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 0.95),
               title="variant (10-step mean where > 30 steps)", title_fontsize=7)
    fig.suptitle("GRPO: mean reward terms per step (weighted sum = reward)")
    _save(fig, out)


def plot_codebooks(usage: dict[str, tuple[list[float], list[float]]], out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    width = 0.8 / max(len(usage), 1)
    for i, (label, (used, perplexity)) in enumerate(usage.items()):
        levels = [level + (i - (len(usage) - 1) / 2) * width for level in range(len(used))]
        left.bar(levels, used, width, label=label)
        right.bar(levels, perplexity, width, label=label)
    for ax, title in ((left, "codes used / codebook size"), (right, "perplexity of item codes / codebook size")):
        level_count = max(len(u[0]) for u in usage.values())
        ax.set_xticks(range(level_count), [f"level {chr(ord('a') + lv)}" for lv in range(level_count)])
        ax.set(title=title, ylim=(0, 1.05))
        ax.grid(alpha=0.3, axis="y")
    right.legend(fontsize=7)
    _save(fig, out)


def _colours(labels: Iterable[str]) -> dict[str, tuple[float, ...]]:
    """A distinct colour per label from the 20-colour palette, repeating only past 20 labels."""
    return dict(zip(labels, itertools.cycle(plt.get_cmap("tab20").colors)))


def _save(fig: plt.Figure, out: Path) -> None:
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--run", type=Path, action="append", default=None,
                        help="a run folder to plot (repeatable; default: runs/demo and runs/mined_scientific if present)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "plots")
    parser.add_argument("--codebook-size", type=int, default=256)
    args = parser.parse_args()
    runs = args.run if args.run is not None else [
        p for p in (REPO_ROOT / "runs" / "demo", REPO_ROOT / "runs" / "mined_scientific") if p.is_dir()]
    made = 0
    if curves := sasrec_curves(args.results):
        plot_sasrec(curves, args.out / "sasrec_valid_ndcg.png")
        made += 1
    if curves := sft_curves(args.results, runs):
        plot_sft(curves, args.out / "sft_valid.png")
        made += 1
    if curves := grpo_curves(args.results, runs):
        plot_grpo(curves, args.out / "grpo_rewards.png")
        made += 1
    if maps := sid_maps(args.results, runs):
        plot_codebooks({label: code_usage(path, args.codebook_size) for label, path in maps.items()},
                       args.out / "codebook_utilisation.png")
        made += 1
    if not made:
        sys.exit(f"nothing to plot: no benchmark results under {args.results} and no run folders with manifests")


if __name__ == "__main__":
    main()
