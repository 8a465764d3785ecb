"""The reproduction report of one dataset: every measured variant's test metrics, the ablation ladder of the
method (MostPop → SASRec → text-only SIDs + SFT → + interest-enriched SIDs → + collaborative SIDs → + GRPO rule rewards →
+ interest-aware reward, and any other measured system such as multi-interest retrieval), the wall time of
every stage of the run folders, and published numbers of peers with their sources.

It trains nothing: it reads what the other benchmarks wrote (`benchmarks/results/*_<dataset>[_<tag>].json`) and the
`manifest.json` files of run folders, so it can be re-run whenever a benchmark adds a number.

    python scripts/bench_repro.py --dataset scientific --update-benchmarks
    python scripts/bench_repro.py --dataset beauty --run runs/beauty

Writes `benchmarks/results/repro_<dataset>.json` (`metrics` per variant, `ablation`, `wall_s` per stage and
run, `published`); `--update-benchmarks` rewrites the dataset's block between its markers in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import command_line, machine_description, read_manifest, write_json
from genrec.config import REPO_ROOT

KEYS = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")
STAGES = ("data", "baselines", "mine", "label", "embed", "sid", "sft", "grpo", "recommend", "eval")


@dataclass(frozen=True)
class Step:
    """One rung of the ablation ladder: the measured rows (ids, regex) that stand for it. The row with the best
    *validation* NDCG@10 wins; where the candidates recorded none, the row matching `default` (the setting the
    config uses by default) stands for the rung — test metrics never pick a row."""

    label: str
    pattern: str
    default: str | None = None


# Row ids are `<results file stem without _dataset>[:<variant>]` or `<run folder>/<system>`.
LADDER = (
    Step("MostPop", r"^baseline_mostpop$"),
    Step("SASRec (full-softmax CE)", r"^baseline_sasrec$"),
    Step("text-only SIDs + SFT (TIGER / LC-Rec setting)", r"^sft:(?!.*interest).*text"),
    Step("+ interest-enriched SIDs", r"^(sft|sid_sft|ieid)\w*:.*(interest|ieid|fused)"),
    Step("+ collaborative SIDs (SASRec item table appended, as LETTER)", r"^sft:.*collab"),
    Step("+ GRPO (rule rewards)", r"^grpo\w*:.*rule"),
    Step("+ interest-aware reward", r"^grpo\w*:.*interest"),
    Step("multi-interest retrieval (GemiRec / ULIM / DMI)", r"^multi\w*(:|$)"),
    Step("interest-conditioned decoding (a beam group per interest)", r"^interest_decoding:.*interest",
         default=r"^interest_decoding:(\w+:)?interest_codes_m\d+_coverage_p0\.05$"),
)
# A row's starting point, when its results file scored it too: the SFT model GRPO started from, plain beam search.
STARTS = ("sft", "beam")

MINIONEREC_COLUMNS = ("hr@3", "ndcg@3", "hr@5", "ndcg@5", "hr@10", "ndcg@10")


def _minionerec(system: str, values: tuple[float, ...]) -> dict:
    """A row of MiniOneRec's Table 1 (Industrial), in its column order."""
    return dict(dataset="scientific", system=system, metrics=dict(zip(MINIONEREC_COLUMNS, values, strict=True)),
                same_split="no", source="MiniOneRec technical report (github.com/AkaliKong/MiniOneRec), Table 1, Industrial",
                setting="MiniOneRec's Industrial split of Amazon Industrial_and_Scientific (its own time window and "
                        "filtering; LLM rows on a Qwen backbone): not our 8,317-user LC-Rec 5-core set")


# Published numbers, only where a source was found (HR@K = Recall@K under leave-one-out: one target per user).
# `same_split`: whether the paper's users, items and split are ours (yes / no / unknown).
TIGER_SOURCE = ("Rajput et al., Recommender Systems with Generative Retrieval (TIGER), NeurIPS 2023, arXiv 2305.05065, "
                "main results table (its Recall@K is HR@K here)")
BEAUTY_SAME = "yes (the same 5-core set; P5 and S3-Rec ids are reported equal, not verified here)"
TIGER_SETTING = "Amazon 2014 Beauty 5-core (P5/S3-Rec ids), leave-one-out, history <= 20, full ranking"
DIGR_SOURCE = ("DeepInterestGR, arXiv 2602.18907: HR@5 as listed on wizwand.com/paper/699d306a6017c4460ffab28a and in "
               "the README of github.com/yidimopozhibai/DeepInterestGR @ 7b732d2 (the paper's own table not seen)")
PUBLISHED: tuple[dict, ...] = (
    dict(dataset="beauty", system="SASRec, as reported by TIGER", same_split=BEAUTY_SAME,
         metrics={"hr@5": 0.0387, "hr@10": 0.0605, "ndcg@5": 0.0249, "ndcg@10": 0.0318},
         source=TIGER_SOURCE, setting=TIGER_SETTING),
    dict(dataset="beauty", system="TIGER", same_split=BEAUTY_SAME,
         metrics={"hr@5": 0.0454, "hr@10": 0.0648, "ndcg@5": 0.0321, "ndcg@10": 0.0384},
         source=TIGER_SOURCE, setting=TIGER_SETTING),
    dict(dataset="beauty", system="MiniOneRec, as reported by DeepInterestGR (HR@5 only)", metrics={"hr@5": 0.0612},
         same_split="unknown", source=DIGR_SOURCE, setting="not stated"),
    dict(dataset="beauty", system="DeepInterestGR (HR@5 only)", metrics={"hr@5": 0.0678},
         same_split="unknown", source=DIGR_SOURCE, setting="not stated"),
    *(_minionerec(system, values) for system, values in (
        ("SASRec, as reported by MiniOneRec", (0.0790, 0.0700, 0.0909, 0.0748, 0.1088, 0.0806)),
        ("TIGER, as reported by MiniOneRec", (0.0852, 0.0742, 0.1010, 0.0807, 0.1321, 0.0908)),
        ("LC-Rec, as reported by MiniOneRec", (0.0915, 0.0805, 0.1057, 0.0862, 0.1332, 0.0952)),
        ("MiniOneRec", (0.1143, 0.1011, 0.1321, 0.1084, 0.1586, 0.1167)),
    )),
)
NOT_FOUND = {
    "scientific": "No published number on our scientific split (LC-Rec-format Industrial_and_Scientific, 8,317 users, "
                  "4,344 items) was found, and no LETTER or GRID table for it: they are left out, not quoted from memory.",
    "beauty": "LC-Rec, LETTER, GRID and the DeepInterestGR paper's own Beauty tables were not found in a citable form: "
              "left out, not quoted from memory.",
}


@dataclass
class Row:
    """One measured system: its test metrics and where they come from."""

    id: str
    metrics: dict[str, float]
    users: int | None
    source: str
    wall_s: float | None = None
    notes: str = ""
    valid_ndcg10: float | None = None


def _valid_ndcg10(variant: dict) -> float | None:
    """The validation NDCG@10 a benchmark recorded for its chosen checkpoint / setting, if any: the selected
    merge rule's, else `best_valid_ndcg@10`, else the best point of `valid_curve`."""
    merge = variant.get("selected_merge")
    by_merge = variant.get("by_merge", {}).get(merge, {}) if merge else {}
    for value in (by_merge.get("valid_ndcg@10"), variant.get("best_valid_ndcg@10"), variant.get("valid_ndcg@10")):
        if isinstance(value, int | float):
            return float(value)
    curve = variant.get("valid_curve", [])
    points = curve.values() if isinstance(curve, dict) else curve  # a list of points, or {step: point}
    curve = [p["ndcg@10"] for p in points if isinstance(p, dict) and "ndcg@10" in p]
    return max(curve) if curve else None


def _metrics(obj: dict) -> dict[str, float]:
    return {k: float(obj[k]) for k in KEYS if k in obj}


def _wall(obj: dict, *keys: str) -> float | None:
    return next((float(obj[k]) for k in keys if isinstance(obj.get(k), int | float)), None)


def rows_from_results(results: Path, dataset: str) -> list[Row]:
    """Every system measured in `results/*_<dataset>[_<tag>].json`: a file with `metrics` (one system, or one per
    variant) or `variants` (each with `metrics`). Unreadable or metric-less files are skipped."""
    rows = []
    for path in sorted(results.glob("*.json")):
        # `<kind>_<dataset>.json`, or `<kind>_<dataset>_<tag>.json` for a benchmark's own extra file
        named = re.fullmatch(rf"(.+?)_{re.escape(dataset)}(_.+)?\.json", path.name)
        stem = "".join(part or "" for part in named.groups()) if named else "repro"
        if stem == "repro":
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        if data.get("split") == "valid":  # a tuning run's validation scores (e.g. coverage_penalty), never a test row
            continue
        source = str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)
        variants = data.get("variants") if isinstance(data.get("variants"), dict) else {}
        # a variant whose benchmark chose a setting on validation (e.g. the multi-interest merge rule) reports it
        # in `metrics_selected_merge`; that is the variant's result, `metrics` its default setting
        measured = {name: {**v, "metrics": v.get("metrics_selected_merge") or v.get("metrics", {})}
                    for name, v in variants.items() if isinstance(v, dict) and _metrics(v.get("metrics", {}))}
        top = data.get("metrics", {}) if isinstance(data.get("metrics"), dict) else {}
        if measured:
            for name, v in measured.items():
                rows.append(Row(f"{stem}:{name}", _metrics(v["metrics"]), v.get("test_users", v.get("users")), source,
                                _wall(v, "total_wall_s", "wall_s", "train_wall_s"), str(v.get("notes", "")),
                                _valid_ndcg10(v)))
        elif _metrics(top):
            rows.append(Row(stem, _metrics(top), data.get("users", data.get("test_users")), source,
                            _wall(data, "wall_s", "total_wall_s"), str(data.get("notes", "")), _valid_ndcg10(data)))
        elif not top:  # systems grouped under another key, e.g. {"hf": {variant: metrics}, "vllm": {...}}, or a
            # side-by-side section of another checkpoint, {section: {"hf": {variant: metrics}}} -> `stem:section:variant`
            for group, systems in data.items():
                if isinstance(systems, dict) and isinstance(systems.get("hf"), dict):
                    systems = systems["hf"]
                if isinstance(systems, dict) and not group.startswith("paired"):
                    rows += [Row(f"{stem}:{group}:{name}", _metrics(v), v.get("users"), source, _wall(v, "search_wall_s"))
                             for name, v in systems.items() if isinstance(v, dict) and _metrics(v)]
        else:
            walls = data.get("wall_s") if isinstance(data.get("wall_s"), dict) else {}
            for name, m in top.items():
                if isinstance(m, dict) and _metrics(m):
                    wall = sum(float(s) for key, s in walls.items() if key.startswith(name)) or None
                    training = data.get("training", {}).get(name, {}) if isinstance(data.get("training"), dict) else {}
                    rows.append(Row(f"{stem}:{name}", _metrics(m), m.get("users", data.get("test_users")), source, wall,
                                    valid_ndcg10=_valid_ndcg10(training)))
    return rows


def rows_from_runs(runs: list[Path]) -> list[Row]:
    """The test metrics a run's eval stage wrote (`eval/manifest.json`), one row per scored system."""
    rows = []
    for run in runs:
        manifest = read_manifest(run / "eval")
        if manifest is None:
            continue
        for system, m in manifest.metrics.items():
            if isinstance(m, dict) and _metrics(m):
                rows.append(Row(f"{run.name}/{system}", _metrics(m), m.get("users"), str(run / "eval" / "manifest.json")))
    return rows


def stage_walls(runs: list[Path]) -> dict[str, dict[str, float]]:
    """Wall seconds of every stage with a manifest, per run folder, and their total. Mining counts the LLM time
    its answers cost when that is longer (a re-run answered from the cache takes seconds; the answers took hours)."""
    walls = {}
    for run in runs:
        per_stage = {}
        for stage in STAGES:
            manifest = read_manifest(run / stage)
            if manifest is not None:
                llm_seconds = manifest.metrics.get("llm_seconds") if stage == "mine" else None
                per_stage[stage] = round(max(manifest.wall_s, float(llm_seconds or 0)), 1)
        if per_stage:
            name = str(run.relative_to(REPO_ROOT) if run.is_absolute() and run.is_relative_to(REPO_ROOT) else run)
            walls[name] = {**per_stage, "total": round(sum(per_stage.values()), 1)}
    return walls


def _pick(step: Step, pool: list[Row]) -> tuple[Row | None, str]:
    """The row standing for a rung, and how it was chosen (never by a test metric)."""
    if len(pool) == 1:
        return pool[0], "only candidate"
    scored = [r for r in pool if r.valid_ndcg10 is not None]
    if scored:
        return max(scored, key=lambda r: r.valid_ndcg10), "best validation NDCG@10"
    default = next((r for r in pool if step.default and re.search(step.default, r.id)), None)
    return (default, "the config's default setting") if default else (None, "no validation score to choose by")


def ablation(rows: list[Row], full_users: int | None) -> list[dict]:
    """Each ladder step's row chosen by `_pick` among rows scored on every test user (else rows whose user
    count is not stated, else samples); a row from a file that also scored its starting point (a sibling
    `...:sft` or `...:beam` row) names it in `start`."""
    steps = []
    for step in LADDER:
        matches = [r for r in rows if re.search(step.pattern, r.id)]
        full = [r for r in matches if full_users is not None and r.users == full_users]
        unknown = [r for r in matches if r.users is None]  # the benchmark did not say: not marked as a sample
        pool = full or unknown or matches
        best, chosen_by = _pick(step, pool)
        siblings = {best.id.rsplit(":", 1)[0] + f":{name}" for name in STARTS} - {best.id} if best and ":" in best.id else set()
        start = next((r for r in rows if r.id in siblings), None)
        steps.append({"step": step.label, "row": best.id if best else None,
                      "start": {"row": start.id, "ndcg@10": start.metrics.get("ndcg@10")} if start else None,
                      "metrics": best.metrics if best else None, "users": best.users if best else None,
                      "source": best.source if best else None,
                      "sample": bool(best and best.users is not None and best.users != full_users),
                      "chosen_by": chosen_by if matches else None,
                      "candidates": [r.id for r in matches]})
    return steps


def build_report(dataset: str, results: Path, runs: list[Path], command: str) -> dict:
    """Everything the report shows, as one JSON-able dict."""
    rows = rows_from_results(results, dataset) + rows_from_runs(runs)
    full_users = max((r.users for r in rows if r.id.startswith("baseline_") and r.users), default=None)
    return {
        "command": command,
        "machine": machine_description(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": dataset,
        "test_users": full_users,
        "metrics": {r.id: {**r.metrics, "users": r.users, "source": r.source} for r in rows},
        "ablation": ablation(rows, full_users),
        "wall_s": stage_walls(runs),
        "benchmark_wall_s": {r.id: r.wall_s for r in rows if r.wall_s is not None},
        "notes": {r.id: r.notes for r in rows if r.notes},
        "published": [p for p in PUBLISHED if p["dataset"] == dataset],
        "published_not_found": NOT_FOUND.get(dataset, "No published numbers collected for this dataset."),
    }


def _users(users: int | None) -> str:
    return f"{users:,}" if users else "?"


def _cells(metrics: dict | None) -> str:
    return " | ".join(f"{metrics[k]:.4f}" if metrics and k in metrics else "–" for k in KEYS)


def markdown(report: dict) -> str:
    """The dataset's block for BENCHMARKS.md: ablation ladder, published peers, wall time per stage."""
    users = report["test_users"]
    lines = [f"**{report['dataset']}** — test split, full ranking, {users:,} test users "
             f"(`{report['command']}`, {report['date']}; from `results/repro_{report['dataset']}.json`)" if users
             else f"**{report['dataset']}** — no measured baseline yet", "",
             "| step | HR@5 | HR@10 | NDCG@5 | NDCG@10 | measured as (each rung's row chosen without test metrics) | users |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for step in report["ablation"]:
        where = f"`{step['row']}`" if step["row"] else "not measured"
        scored = "" if step["row"] is None else _users(step["users"])
        if step["sample"]:
            scored += " (sample)"
        if step.get("chosen_by") and step["row"]:
            where += f", chosen by {step['chosen_by']}"
        if step.get("start"):
            where += f" (its starting point `{step['start']['row']}`: NDCG@10 {step['start']['ndcg@10']:.4f})"
        lines.append(f"| {step['step']} | {_cells(step['metrics'])} | {where} | {scored} |")
    others = [rid for rid in report["metrics"] if rid not in {s["row"] for s in report["ablation"]}]
    if others:
        lines += ["", "Other measured rows (same metrics): " + "; ".join(
            f"`{rid}` NDCG@10 {report['metrics'][rid].get('ndcg@10', float('nan')):.4f}"
            f" ({_users(report['metrics'][rid]['users'])} users)" for rid in others) + "."]
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for p in report["published"]:
        groups.setdefault((p["source"], p["setting"], p["same_split"]), []).append(p)
    for (source, setting, same_split), published in groups.items():
        lines += ["", f"Published, not run here — {source}. Setting: {setting}. "
                      f"Same users, items and split as ours: **{same_split}**.", "",
                  "| system | HR@5 | HR@10 | NDCG@5 | NDCG@10 |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {p['system']} | {_cells(p['metrics'])} |" for p in published]
    lines += ["", report["published_not_found"]]
    for run, walls in report["wall_s"].items():
        lines += ["", f"Wall time per stage of `{run}` (s; shared 2-core CPU, so inflated; mine: the LLM time of its "
                      "answers where a re-run took them from the cache): " +
                  ", ".join(f"{stage} {s:,.0f}" for stage, s in walls.items())]
    return "\n".join(lines)


def update_benchmarks(path: Path, dataset: str, block: str) -> None:
    """Replace the text between `<!-- repro:<dataset> start -->` and `<!-- repro:<dataset> end -->`."""
    start, end = f"<!-- repro:{dataset} start -->", f"<!-- repro:{dataset} end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path}: markers {start} / {end} not found; add them where the block belongs")
    head, rest = text.split(start, 1)
    path.write_text(f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")


def default_runs(dataset: str) -> list[Path]:
    """Run folders of this dataset that exist: the configs' run_dir and the lead's mined run."""
    import yaml

    candidates = []
    for config in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        data = yaml.safe_load(config.read_text()) or {}
        if (data.get("data") or {}).get("name", "scientific") == dataset and data.get("run_dir"):
            candidates.append(REPO_ROOT / data["run_dir"])
    candidates.append(REPO_ROOT / "runs" / f"mined_{dataset}")
    return [p for p in dict.fromkeys(candidates) if p.is_dir()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="scientific, beauty, ...")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--run", type=Path, action="append", default=None,
                        help="a run folder whose manifests give wall time per stage (repeatable; default: the "
                             "configs' run_dir for this dataset and runs/mined_<dataset>, those that exist)")
    parser.add_argument("--out", type=Path, default=None, help="default: <results>/repro_<dataset>.json")
    parser.add_argument("--update-benchmarks", type=Path, nargs="?", const=REPO_ROOT / "BENCHMARKS.md", default=None,
                        help="rewrite this dataset's block between its markers in BENCHMARKS.md (or the given file)")
    args = parser.parse_args()
    runs = args.run if args.run is not None else default_runs(args.dataset)
    command = command_line()
    report = build_report(args.dataset, args.results, runs, command)
    out = args.out or args.results / f"repro_{args.dataset}.json"
    write_json(out, report)
    block = markdown(report)
    print(block)
    if args.update_benchmarks is not None:
        update_benchmarks(args.update_benchmarks, args.dataset, block)
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
