"""Multi-interest retrievers (shared base, GemiRec, ULIM, DMI) and their ablations on one dataset, through
the real `multi` stage and evaluation, side by side with SASRec and the best generative variant.

    nice -n 15 .venv/bin/python scripts/bench_multi_interest.py --dataset scientific

Data comes from `configs/<dataset>.yaml` (run folder `runs/multi_bench/<dataset>`). Every variant trains
once with 1 thread (early stopping on validation NDCG@10 under the max_score merge) and is then ranked
under all three merge rules from its saved model; the rule with the best *validation* NDCG@10 is reported
as `metrics_selected_merge` (`--rescore` adds that to variants already in the JSON, without training). GemiRec's seeded variant reads mined interests from
`--interests` (default: runs/mined_scientific label/ or mine/ output when present, else runs/demo's).
Writes `benchmarks/results/multi_interest_<dataset>.json` after every variant (a partial run keeps what ran).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT
from genrec.eval import evaluate_file
from genrec.multi import MultiConfig
from genrec.multi.merge import RULES
from genrec.pipeline import load_run_config, run_pipeline, run_stage

RESULTS = REPO_ROOT / "benchmarks" / "results"
METRICS = ("hr@5", "hr@10", "ndcg@5", "ndcg@10")
DEFAULT_MERGE = "max_score"

# name -> model section; "off" ablations that equal another variant are listed in ABLATIONS, not retrained
VARIANTS: dict[str, dict] = {
    "base": {"model": "base"},
    "gemirec": {"model": "gemirec"},
    "ulim": {"model": "ulim"},
    "dmi": {"model": "dmi"},
    "ulim_no_pointer": {"model": "ulim", "pointer": False},
    "ulim_len20": {"model": "ulim", "max_len": 20},
    "gemirec_seeded": {"model": "gemirec", "seed_interests": "auto"},
    "base_routing": {"model": "base", "extractor": "routing"},
}
# module -> (variant with it on, variant with it off); "gemirec_no_generation" is ranked from gemirec's model
ABLATIONS = {
    "gemirec.dictionary": ("gemirec", "base"),
    "gemirec.generative_posterior": ("gemirec", "gemirec_no_generation"),
    "gemirec.seeded_dictionary": ("gemirec_seeded", "gemirec"),
    "ulim.pointer": ("ulim", "ulim_no_pointer"),
    "ulim.long_history": ("ulim", "ulim_len20"),
    "dmi.diffusion": ("dmi", "base"),
}


def _interest_source(explicit: Path | None) -> Path | None:
    """The interests file GemiRec's seeded variant reads: explicit, else the real mined run, else the demo's."""
    if explicit is not None:
        return explicit
    for run in ("mined_scientific", "demo"):
        for rel in ("label/interests_labelled.parquet", "mine/interests.parquet"):
            if (REPO_ROOT / "runs" / run / rel).is_file():
                return REPO_ROOT / "runs" / run / rel
    return None


def _link_interests(source: Path, run_dir: Path) -> None:
    """Put the interests file where the stage looks for it (label/ for labelled files, else mine/)."""
    paths = RunPaths(run_dir)
    dest = paths.interests_labelled if source.name == "interests_labelled.parquet" else paths.interests
    for stale in (paths.interests_labelled, paths.interests):
        stale.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)


def _scores(run_dir: Path, system: str) -> dict[str, float]:
    metrics = evaluate_file(RunPaths(run_dir).recs(system), run_dir)
    return {m: metrics[m] for m in METRICS}


def _reference(name: str, users: int | None) -> dict | None:
    """A reference row from another benchmark JSON; of several variants the best by NDCG@10 among those
    scored on all `users` test users (a variant scored on a sample, e.g. a smoke run, is no reference)."""
    path = RESULTS / name
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    metrics = saved["metrics"]
    if all(isinstance(v, dict) for v in metrics.values()):  # several variants
        rows = saved.get("variants", {})
        full = [v for v in metrics if users is None or rows.get(v, {}).get("test_users", users) == users]
        if not full:
            return None
        best = max(full, key=lambda v: metrics[v]["ndcg@10"])
        return {"file": name, "variant": best, "metrics": metrics[best]}
    return {"file": name, "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="scientific, beauty, ... (a data.name)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="model override for every variant, e.g. epochs=30 (repeatable)")
    parser.add_argument("--interests", type=Path, default=None, help="interests parquet for gemirec_seeded")
    parser.add_argument("--rescore", action="store_true",
                        help="no training: add validation NDCG@10 per merge rule to the variants already in the JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    run_dir = REPO_ROOT / "runs" / "multi_bench" / args.dataset
    yaml_path = REPO_ROOT / "configs" / f"{args.dataset}.yaml"
    config = load_run_config(yaml_path if yaml_path.is_file() else None, [f"run_dir={run_dir}", f"data.name={args.dataset}"])
    run_pipeline(config.model_copy(update={n: None for n in type(config).model_fields if n not in {"run_dir", "data"}}))
    overrides = {}
    for text in args.overrides:
        key, _, value = text.partition("=")
        overrides[key] = json.loads(value) if value[:1] in "0123456789-[{tf" else value

    out_path = RESULTS / f"multi_interest_{args.dataset}.json"
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    command = command_line()
    result.update({"dataset": args.dataset, "command": command, "machine": machine_description(), "threads": 1,
                   "default_merge": DEFAULT_MERGE})
    result.setdefault("variants", {})
    if args.rescore:
        for name, row in result["variants"].items():
            row["by_merge"], _ = _by_merge(MultiConfig(system=f"multi_{name}"), run_dir)
            _select_merge(row)
        _summarise(result)
        write_json(out_path, result)
        return
    ran: list[str] = []
    for name in args.variants.split(","):
        section = {**VARIANTS[name], **overrides}
        if name == "gemirec_seeded":
            source = _interest_source(args.interests)
            if source is None:
                print("gemirec_seeded: no interests file found, skipped", flush=True)
                continue
            _link_interests(source, run_dir)
        multi = MultiConfig.model_validate({"model": section, "merge": DEFAULT_MERGE, "system": f"multi_{name}"})
        cfg = config.model_copy(update={"multi": multi})
        load = os.getloadavg()[0]
        start = time.perf_counter()
        try:
            manifest = run_stage(cfg, "multi")
        except ValueError as exc:  # e.g. too few items with mined interests to seed the dictionary
            print(f"{name}: skipped ({exc})", flush=True)
            result.setdefault("skipped", {})[name] = str(exc)
            _write(out_path, result, ran)
            continue
        wall = time.perf_counter() - start
        row = {"config": multi.model.model_dump(mode="json"), "load_1min_at_start": round(load, 2),
               "stage_wall_s": round(wall, 1), "counts": manifest.counts,
               **{k: v for k, v in manifest.metrics.items() if k not in {"history", "merge", "system"}},
               "history": manifest.metrics["history"], "by_merge": {}}
        if name == "gemirec_seeded":
            row["interests_file"] = str(source)
        row["by_merge"], _ = _by_merge(multi, run_dir)
        row["metrics"] = row["by_merge"][DEFAULT_MERGE]["metrics"]
        _select_merge(row)
        result["variants"][name] = row
        ran.append(name)
        if name == "gemirec":  # the posterior ablation: same model, codes from the extracted interests
            _no_generation(result, run_dir, multi)
            ran.append("gemirec_no_generation")
        result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        _write(out_path, result, ran)
        print(name, row["metrics"], f"collapse {row['collapse']} coverage@10 {row['coverage@10']} "
              f"train {row['train_wall_s']}s (best epoch {row['best_epoch']})", flush=True)


def _write(out_path: Path, result: dict, ran: list[str]) -> None:
    """Write this run's variants over the JSON as it is on disk now, so bench processes running other
    variants of the same dataset at the same time keep each other's rows."""
    on_disk = json.loads(out_path.read_text()) if out_path.is_file() else {}
    merged = {**on_disk, **result,
              "variants": {**on_disk.get("variants", {}), **{n: result["variants"][n] for n in ran}},
              "skipped": {**on_disk.get("skipped", {}), **result.get("skipped", {})}}
    if not merged["skipped"]:
        del merged["skipped"]
    _summarise(merged)
    write_json(out_path, merged)


def _no_generation(result: dict, run_dir: Path, multi: MultiConfig) -> None:
    """Rank with gemirec's trained model, choosing codes by quantising the extracted interests."""
    import torch

    from genrec.multi.stage import model_path

    path = model_path(multi, run_dir)
    saved = torch.load(path, weights_only=False)
    saved["config"]["generative"] = False
    ablated = multi.model_copy(update={"system": "multi_gemirec_no_generation",
                                       "model": multi.model.model_copy(update={"generative": False})})
    target = model_path(ablated, run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, target)
    by_merge, collapse = _by_merge(ablated, run_dir)
    row = {"by_merge": by_merge, "train_wall_s": 0.0, "note": "gemirec's model, codes = nearest to the extracted interests",
           "collapse": collapse, "coverage@10": by_merge[DEFAULT_MERGE]["coverage@10"],
           "metrics": by_merge[DEFAULT_MERGE]["metrics"]}
    _select_merge(row)
    result["variants"]["gemirec_no_generation"] = row


def _by_merge(multi: MultiConfig, run_dir: Path) -> tuple[dict, float]:
    """Every merge rule's test metrics, test coverage@10 and validation NDCG@10 from the saved model (what
    `genrec multi recommend` ranks; one retrieval pass per split), and the test users' mean collapse."""
    from genrec.data import load_items, load_sequences
    from genrec.data.tensors import item_index, ndcg_at
    from genrec.eval.recs import write_recs
    from genrec.multi.data import build_examples
    from genrec.multi.stage import model_path
    from genrec.multi.train import coverage_at, load_model, retrieve_rules

    model, inputs, _ = load_model(model_path(multi, run_dir))
    split = build_examples(load_sequences(run_dir), item_index(load_items(run_dir)), model.cfg.max_len)
    test, collapse = retrieve_rules(model, split.test.histories, RULES, multi.k)
    valid, _ = retrieve_rules(model, split.valid.histories, RULES, 10)
    rows = {}
    for rule in RULES:
        lists = [[inputs.item_ids[c] for c in row] for row in test[rule].tolist()]
        write_recs(RunPaths(run_dir).recs(multi.system_name), zip(split.test.users, lists, strict=True))
        rows[rule] = {"metrics": _scores(run_dir, multi.system_name),
                      "coverage@10": round(coverage_at(test[rule], inputs.categories), 3),
                      "valid_ndcg@10": round(ndcg_at(valid[rule] + 1, split.valid.targets), 6)}
    return rows, round(float(collapse.mean()), 4)


def _select_merge(row: dict) -> None:
    """The test metrics of the merge rule with the best validation NDCG@10: the rule is chosen without looking
    at the test targets."""
    best = max(RULES, key=lambda r: row["by_merge"][r]["valid_ndcg@10"])
    row["selected_merge"] = best
    row["metrics_selected_merge"] = row["by_merge"][best]["metrics"]


def _summarise(result: dict) -> None:
    """The issue's flat keys (metrics / collapse / coverage@10 / train_wall_s per variant), ablations, references."""
    variants = result["variants"]
    result["metrics"] = {n: v["metrics"] for n, v in variants.items()}
    result["metrics_selected_merge"] = {n: {"merge": v["selected_merge"], **v["metrics_selected_merge"]}
                                        for n, v in variants.items() if "selected_merge" in v}
    result["collapse"] = {n: v["collapse"] for n, v in variants.items()}
    result["coverage@10"] = {n: v["coverage@10"] for n, v in variants.items()}
    result["train_wall_s"] = {n: v["train_wall_s"] for n, v in variants.items()}
    result["ablations"] = {}
    for module, (on, off) in ABLATIONS.items():
        if on in variants and off in variants:
            entry = {"on": on, "off": off, "ndcg@10_on": variants[on]["metrics"]["ndcg@10"],
                     "ndcg@10_off": variants[off]["metrics"]["ndcg@10"]}
            if "selected_merge" in variants[on] and "selected_merge" in variants[off]:
                entry.update({"ndcg@10_on_selected_merge": variants[on]["metrics_selected_merge"]["ndcg@10"],
                              "ndcg@10_off_selected_merge": variants[off]["metrics_selected_merge"]["ndcg@10"]})
            result["ablations"][module] = entry
    dataset = result["dataset"]
    users = next((v["counts"]["users"] for v in variants.values() if "users" in v.get("counts", {})), None)
    result["references"] = {k: v for k, v in {
        "sasrec": _reference(f"baseline_sasrec_{dataset}.json", users),
        "mostpop": _reference(f"baseline_mostpop_{dataset}.json", users),
        "best_generative": _reference(f"sft_{dataset}.json", users),
    }.items() if v is not None}


if __name__ == "__main__":
    main()
