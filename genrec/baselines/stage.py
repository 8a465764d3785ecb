"""The baselines stage: fit MostPop and SASRec on the training split, write their test recommendations."""

from __future__ import annotations

from pathlib import Path

from genrec.artifacts import Manifest, RunPaths, stage_run
from genrec.baselines.config import BaselinesConfig
from genrec.baselines.mostpop import most_popular
from genrec.data import load_items, load_sequences
from genrec.eval.recs import write_recs


def sasrec_model_path(run_dir: Path) -> Path:
    """Where SASRec's best weights are saved (embed.collab=sasrec reads its item table)."""
    return RunPaths(Path(run_dir)).stage_dir("baselines") / "sasrec" / "model.pt"


def inputs(config: BaselinesConfig, run_dir: Path) -> list[Path]:
    paths = RunPaths(Path(run_dir))
    distill = config.sasrec.distill if "sasrec" in config.systems else None
    return [paths.items, paths.sequences, *(Path(teacher) for teacher in (distill.teachers if distill else []))]


def run(config: BaselinesConfig, run_dir: Path) -> Manifest:
    """Fit each configured baseline; recommendations go to `eval/<name>/recs.jsonl`."""
    paths = RunPaths(Path(run_dir))
    with stage_run("baselines", config, paths.stage_dir("baselines"), inputs(config, run_dir)) as manifest:
        sequences = load_sequences(run_dir)
        test_users = sequences.loc[sequences["split"] == "test", "user_id"].tolist()
        if "mostpop" in config.systems:
            top = most_popular(sequences, config.k)
            manifest.counts["mostpop_users"] = write_recs(paths.recs("mostpop"), ((u, top) for u in test_users))
            manifest.outputs.append(str(paths.recs("mostpop")))
        if "sasrec" in config.systems:
            from genrec.baselines.sasrec import fit_and_recommend

            model_path = sasrec_model_path(run_dir)
            result = fit_and_recommend(config.sasrec, load_items(run_dir), sequences, config.k, model_path.parent)
            manifest.counts["sasrec_users"] = write_recs(paths.recs("sasrec"), result.recs.items())
            manifest.metrics["sasrec"] = result.summary
            manifest.outputs += [str(paths.recs("sasrec")), str(model_path)]
    return manifest
