"""`genrec run`: the run config that gathers every stage's config, and the ordered stage list.

Stages meet only through files in the run folder. A stage is run when its section in the config is
present and its manifest is stale (config changed, an input file changed, or an output is missing).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from genrec.artifacts import Manifest, RunPaths, fresh_manifest
from genrec.baselines.config import BaselinesConfig
from genrec.config import ConfigError, StrictModel, apply_overrides, build_model, read_yaml
from genrec.data.config import DataConfig
from genrec.decode.config import RecommendConfig
from genrec.embed.config import EmbedConfig
from genrec.eval.stage import EvalConfig
from genrec.mining.config import MiningConfig
from genrec.multi.config import MultiConfig
from genrec.reward.config import LabelConfig
from genrec.serve.config import ServeConfig
from genrec.sid.config import SidConfig
from genrec.train.grpo import GRPOStageConfig
from genrec.train.sft import SFTConfig


class RunConfig(StrictModel):
    """One run: where it writes and the config of every stage (a null section switches a stage off)."""

    run_dir: Path = Path("runs/demo")
    data: DataConfig = DataConfig()
    baselines: BaselinesConfig | None = None
    mine: MiningConfig | None = None
    label: LabelConfig | None = None
    embed: EmbedConfig | None = None
    sid: SidConfig | None = None
    sft: SFTConfig | None = None
    grpo: GRPOStageConfig | None = None
    recommend: RecommendConfig | None = None
    multi: MultiConfig | None = None  # multi-interest retrievers (GemiRec / ULIM / DMI); off by default
    # mine / label / embed / sid / sft / grpo / recommend sections are added by their stages
    eval: EvalConfig | None = None
    serve: ServeConfig | None = None  # `genrec serve` (not a pipeline stage)


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: its config section and the module exposing `run(config, run_dir)` and `inputs(...)`."""

    name: str
    module: str

    def load(self) -> tuple[Callable[[BaseModel, Path], Manifest], Callable[[BaseModel, Path], list[Path]]]:
        mod = importlib.import_module(self.module)
        return mod.run, mod.inputs


# Execution order. A stage's module is imported only when its config section is present.
STAGES: tuple[Stage, ...] = (
    Stage("data", "genrec.data"),
    Stage("baselines", "genrec.baselines"),
    Stage("mine", "genrec.mining"),
    Stage("label", "genrec.reward"),
    Stage("embed", "genrec.embed"),
    Stage("sid", "genrec.sid"),
    Stage("sft", "genrec.train.sft"),
    Stage("grpo", "genrec.train.grpo"),
    Stage("multi", "genrec.multi"),  # before recommend: recommend.interest_source=gemirec reads its model
    Stage("recommend", "genrec.decode"),
    Stage("eval", "genrec.eval"),
)


def load_run_config(path: Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config (or the defaults), apply `key.sub=value` overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    return build_model(RunConfig, data, str(path) if path else "<defaults>")


def stage_config(config: RunConfig, name: str) -> BaseModel:
    """The config section of a stage, failing clearly when the run config switches it off."""
    section = getattr(config, name, None)
    if section is None:
        raise ConfigError(f"stage {name!r} has no section in this config; add a `{name}:` section or --set {name}.<key>=...")
    return section


def _stage(name: str) -> Stage:
    stage = next((s for s in STAGES if s.name == name), None)
    if stage is None:
        raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in STAGES)}")
    return stage


def reuse_or_run(name: str, section: BaseModel, run_dir: Path, force: bool = False,
                 on_status: Callable[[str], None] | None = None) -> tuple[Manifest, bool]:
    """The stage's manifest and whether it ran: a stage already done with this config and these inputs is read
    back (re-scoring a trained model costs no retraining), otherwise it runs. `on_status` hears "skip" or "run"."""
    run, inputs = _stage(name).load()
    stage_dir = RunPaths(run_dir).stage_dir(name)
    manifest = None if force else fresh_manifest(stage_dir, section, inputs(section, run_dir))
    if manifest is not None:
        if on_status:
            on_status("skip")
        return manifest, False
    if on_status:
        on_status("run")
    return run(section, run_dir), True


def run_stage(config: RunConfig, name: str) -> Manifest:
    """Run one stage unconditionally (what the per-stage CLI commands do)."""
    run, _ = _stage(name).load()
    return run(stage_config(config, name), config.run_dir)


def run_pipeline(config: RunConfig, force: bool = False,
                 on_stage: Callable[[str, str], None] | None = None) -> dict[str, Manifest | None]:
    """Run every configured stage in order, skipping fresh ones; returns the manifest of each run stage.

    `on_stage(name, status)` is called with status "skip" (fresh), "run" (starting) or "off" (no section).
    """
    results: dict[str, Manifest | None] = {}
    for stage in STAGES:
        section = getattr(config, stage.name, None)
        if section is None:
            if on_stage:
                on_stage(stage.name, "off")
            continue
        report = (lambda status, name=stage.name: on_stage(name, status)) if on_stage else None
        manifest, ran = reuse_or_run(stage.name, section, config.run_dir, force, report)
        results[stage.name] = manifest if ran else None
    return results
