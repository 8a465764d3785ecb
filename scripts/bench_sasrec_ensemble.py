"""Seed ensemble of SASRec: the baseline's side of the decoder's seed-ensemble comparison (`bench_ensemble.py`).

The run's SASRec (`baselines/sasrec/model.pt`, the config's seed) is the first member; every `--seeds` value trains
one more SASRec with the same settings and another seed (resumable, in `--root`). The ensemble ranks all items by the
members' mean log p(item | history) (`genrec.baselines.sasrec.ensemble_recommend`), so SASRec is ensembled as the
decoder is: same number of members, each a seed of its recipe. Writes the ensemble's `recs.jsonl` and
`benchmarks/results/sasrec_ensemble_<dataset>.json` (metrics of members, ensemble and `--compare` systems; the
ensemble's paired NDCG@10 difference to each; members' training wall time).

`--students` distils the ensemble into single SASRecs, the baseline's side of the decoder's ensemble distillation
(`sft.distill`): each student seed trains with `baselines.sasrec.distill` (teachers = the members, `--distill-weight`,
`--temperature`) in `--root/student<S>/`; the JSON adds their metrics and each student's paired difference
(`students_vs`).

    OMP_NUM_THREADS=1 python scripts/bench_sasrec_ensemble.py --dataset scientific --run runs/scientific_text \
        --seeds 43 44 --root runs/sasrec_seeds/scientific \
        --compare decoder_ensemble=runs/ensemble_scientific3/recs.jsonl --students 47 48
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import RunPaths, command_line, machine_description, write_json
from genrec.config import REPO_ROOT, DistillConfig
from genrec.eval.metrics import ensemble_report
from genrec.eval.recs import read_recs, write_recs


def main() -> None:
    import torch

    from genrec.baselines.config import SASRecConfig
    from genrec.baselines.sasrec import ensemble_recommend, fit_and_recommend
    from genrec.baselines.stage import sasrec_model_path
    from genrec.data import load_items, load_sequences

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="scientific")
    parser.add_argument("--run", type=Path, required=True, help="run folder with a trained SASRec baseline")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds of the extra members")
    parser.add_argument("--root", type=Path, required=True, help="folder for the extra members (seed<S>/)")
    parser.add_argument("--compare", action="append", default=[], help="NAME=recs.jsonl of another system")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--students", type=int, nargs="*", default=[], help="seeds of SASRecs distilled from "
                        "the ensemble's members")
    parser.add_argument("--distill-weight", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--results", type=Path, default=None,
                        help="default benchmarks/results/sasrec_ensemble_<dataset>.json")
    args = parser.parse_args()

    reference = sasrec_model_path(args.run)
    if not reference.is_file():
        raise SystemExit(f"{reference}: no trained SASRec in {args.run}; run `genrec baseline` there first")
    cfg = SASRecConfig(**torch.load(reference, map_location="cpu", weights_only=True)["config"]).model_copy(
        update={"threads": args.threads})
    if cfg.seed in args.seeds:
        raise SystemExit(f"seed {cfg.seed} is the run's own SASRec; --seeds takes the extra members' seeds")
    if set(args.students) & {cfg.seed, *args.seeds}:
        raise SystemExit("--students seeds must differ from the members' (the run's and --seeds)")
    items, sequences = load_items(args.run), load_sequences(args.run)
    test = sequences[sequences["split"] == "test"]
    targets = dict(zip(test["user_id"].astype(str), test["target"].astype(str), strict=True))

    member_recs = {f"sasrec_s{cfg.seed}": read_recs(RunPaths(args.run).recs("sasrec"))}
    k = len(next(iter(member_recs[f"sasrec_s{cfg.seed}"].values())))  # the run's list length (baselines.k)
    paths, train_wall = [reference], {}
    for seed in args.seeds:
        out = args.root / f"seed{seed}"
        result = fit_and_recommend(cfg.model_copy(update={"seed": seed}), items, sequences, k, out)
        member_recs[f"sasrec_s{seed}"] = result.recs
        train_wall[f"sasrec_s{seed}"] = result.summary["train_wall_s"]
        paths.append(out / "model.pt")

    start = time.perf_counter()
    ranked = ensemble_recommend(paths, sequences, k)
    wall = time.perf_counter() - start
    write_recs(args.root / "ensemble" / "recs.jsonl", ranked.items())

    student_recs = {}
    distill = DistillConfig(teachers=paths, weight=args.distill_weight, temperature=args.temperature)
    for seed in args.students:
        out = args.root / f"student{seed}"
        result = fit_and_recommend(cfg.model_copy(update={"seed": seed, "distill": distill}), items, sequences, k, out)
        student_recs[f"sasrec_student_s{seed}"] = result.recs
        train_wall[f"sasrec_student_s{seed}"] = result.summary["train_wall_s"]

    systems = {**member_recs, **{name: read_recs(Path(path)) for name, path in (c.split("=", 1) for c in args.compare)},
               "sasrec_ensemble": ranked}
    student_reports = {name: ensemble_report({**systems, name: recs}, targets, name)
                       for name, recs in student_recs.items()}  # each student's metrics and paired differences
    result = {
        "command": command_line(), "machine": machine_description(), "dataset": args.dataset,
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "run": str(args.run),
        "members": [str(path) for path in paths], "sasrec_config": cfg.model_dump(exclude={"seed", "threads"}),
        **ensemble_report(systems, targets, "sasrec_ensemble"),
        **({"distill": distill.model_dump(mode="json"),
            "student_metrics": {name: report["metrics"][name] for name, report in student_reports.items()},
            "students_vs": {name: report["ensemble_vs"] for name, report in student_reports.items()}}
           if student_recs else {}),
        "train_wall_s": train_wall, "rank_wall_s": round(wall, 1),
    }
    write_json(args.results or REPO_ROOT / "benchmarks" / "results" / f"sasrec_ensemble_{args.dataset}.json", result)
    print({name: round(m["ndcg@10"], 4) for name, m in result["metrics"].items()})


if __name__ == "__main__":
    main()
