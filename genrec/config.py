"""Run configuration: pydantic models loaded from YAML, with `--set key.sub=value` overrides.

One YAML file describes one run. Every stage owns its config class (in its own package); `RunConfig`
collects them, and a stage whose section is absent (null) is switched off. Unknown keys, wrong types
and missing paths fail at load time with a message naming the offending key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPO_ROOT = Path(__file__).resolve().parents[1]
M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


LearningRate = Annotated[float, Field(gt=0, description="Adam learning rate")]
Epochs = Annotated[int, Field(ge=1, description="most training epochs")]
Patience = Annotated[int, Field(ge=1)]


class TrainingConfig(StrictModel):
    """The training schedule SASRec and the multi-interest models share: Adam on mini-batches, validation NDCG@10
    every `eval_every` epochs, early stopping after `patience` without gain. Each model re-declares `lr`, `epochs`
    and `patience` with its own defaults (with these types, so the bounds stay) and says what `patience` counts."""

    lr: LearningRate
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(256, ge=1)
    epochs: Epochs
    patience: Patience
    eval_every: int = Field(2, ge=1, description="epochs between validation evaluations")
    seed: int = 42
    threads: int = Field(1, ge=1, description="torch threads; 1 avoids thread thrashing on a shared CPU")


class DistillConfig(StrictModel):
    """Ensemble distillation: the loss also pulls the model towards its teachers' mean predicted distribution
    (genrec.train.soft_targets), so one model learns what a seed ensemble ranks. Teachers are models of the same
    kind trained on the same run's split (never on its validation or test targets)."""

    teachers: list[Path] = Field(min_length=1, description="SFT: genrec checkpoint folders (sft/ckpt) on this run's "
                                 "sid_map.parquet; SASRec: model.pt files on this run's items")
    weight: float = Field(0.5, gt=0, le=1, description="share of the loss on the teachers' targets; the rest is "
                          "cross-entropy on the labels")
    temperature: float = Field(1.0, gt=0, description="softens teacher and student alike; the KL term is scaled "
                               "by its square")


def unset_is_absent(value: Any) -> bool:
    """`exclude_if` for optional features: an unset one is left out of dumps and hashes, so adding such a field
    keeps existing stages' config hashes (and their finished outputs) valid."""
    return value is None


class ConfigError(ValueError):
    """A config file or override that cannot be turned into a valid run config."""


def config_hash(config: BaseModel) -> str:
    """Stable short hash of a config's JSON form (what decides whether a stage is stale)."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a","b","c"], value), the value parsed as YAML (so 3, true, [1,2] work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` overrides to a raw config dict (creating sections as needed)."""
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines like `demo.yaml: sft.lr: Input should be a valid number`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, naming the file (and line) when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def build_model(cls: type[M], data: dict[str, Any], source: str) -> M:
    """Validate raw data into `cls`, raising ConfigError with every problem named."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
