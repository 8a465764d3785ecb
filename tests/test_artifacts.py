"""Manifests and freshness: what lets `genrec run` skip unchanged stages."""

import json
from pathlib import Path

import pytest

from genrec.artifacts import (
    MissingInputError,
    atomic_output,
    command_line,
    fresh_manifest,
    read_manifest,
    stage_run,
    write_json_merged,
)
from genrec.config import StrictModel


class Cfg(StrictModel):
    x: int = 1


def test_manifest_written_and_fresh_until_input_or_config_changes(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("a")
    out = tmp_path / "stage" / "out.txt"
    with stage_run("s", Cfg(), tmp_path / "stage", [src]) as manifest:
        out.write_text("done")
        manifest.outputs = [str(out)]
        manifest.counts["n"] = 1
    saved = read_manifest(tmp_path / "stage")
    assert saved is not None and saved.counts == {"n": 1} and saved.wall_s >= 0
    assert "torch" in saved.versions or "pydantic" not in saved.versions  # versions recorded when installed
    assert fresh_manifest(tmp_path / "stage", Cfg(), [src]) is not None
    assert fresh_manifest(tmp_path / "stage", Cfg(x=2), [src]) is None
    src.write_text("b")
    assert fresh_manifest(tmp_path / "stage", Cfg(), [src]) is None
    src.write_text("a")
    out.unlink()
    assert fresh_manifest(tmp_path / "stage", Cfg(), [src]) is None


def test_moved_stage_reads_recorded_paths_from_its_new_place(tmp_path: Path) -> None:
    shared = tmp_path / "shared.txt"  # outside the run folder: stays where it is
    shared.write_text("s")
    (tmp_path / "a" / "data").mkdir(parents=True)
    (tmp_path / "a" / "data" / "in.txt").write_text("a")
    with stage_run("s", Cfg(), tmp_path / "a" / "stage", [tmp_path / "a" / "data" / "in.txt", shared]) as manifest:
        (tmp_path / "a" / "stage" / "out.txt").write_text("done")
        manifest.outputs = [str(tmp_path / "a" / "stage" / "out.txt")]
    (tmp_path / "a").rename(tmp_path / "b")
    inputs = [tmp_path / "b" / "data" / "in.txt", shared]
    assert fresh_manifest(tmp_path / "b" / "stage", Cfg(), inputs) is not None
    shared.write_text("changed")
    assert fresh_manifest(tmp_path / "b" / "stage", Cfg(), inputs) is None
    shared.write_text("s")
    (tmp_path / "b" / "stage" / "out.txt").unlink()
    assert fresh_manifest(tmp_path / "b" / "stage", Cfg(), inputs) is None


def test_inputs_compare_by_content_so_another_checkout_stays_fresh(tmp_path: Path) -> None:
    for checkout in ("one", "two"):  # the same dataset and prompt in two clones of the repo
        (tmp_path / checkout).mkdir()
        (tmp_path / checkout / "data.txt").write_text("items")
        (tmp_path / checkout / "prompt.jinja").write_text("Name the interests of {{ item }}")
    with stage_run("s", Cfg(), tmp_path / "run" / "stage", [tmp_path / "one" / "data.txt",
                                                            tmp_path / "one" / "prompt.jinja"]) as manifest:
        (tmp_path / "run" / "stage" / "out.txt").write_text("done")
        manifest.outputs = [str(tmp_path / "run" / "stage" / "out.txt")]
    two = [tmp_path / "two" / "data.txt", tmp_path / "two" / "prompt.jinja"]
    assert fresh_manifest(tmp_path / "run" / "stage", Cfg(), two) is not None
    assert fresh_manifest(tmp_path / "run" / "stage", Cfg(), two[::-1]) is None  # same bytes, other roles
    assert fresh_manifest(tmp_path / "run" / "stage", Cfg(), two[:1]) is None  # the stage now reads fewer inputs
    (tmp_path / "two" / "prompt.jinja").write_text("Name the needs behind {{ item }}")
    assert fresh_manifest(tmp_path / "run" / "stage", Cfg(), two) is None


def test_failed_stage_leaves_no_manifest(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("a")
    with stage_run("s", Cfg(), tmp_path / "stage", [src]):
        pass
    with pytest.raises(RuntimeError), stage_run("s", Cfg(), tmp_path / "stage", [src]):
        raise RuntimeError("killed")
    assert read_manifest(tmp_path / "stage") is None


def test_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match="absent.parquet"), stage_run("s", Cfg(), tmp_path, [tmp_path / "absent.parquet"]):
        pass


def test_atomic_output_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise ValueError
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_json_merge_keeps_entries_other_writers_added(tmp_path: Path) -> None:
    """Two benchmark processes that read the file before either wrote: the second keeps the first's variant."""
    path = tmp_path / "bench.json"
    write_json_merged(path, {"variants": {"a": 1}, "commands": ["run a"], "date": "1"}, ["variants"], lists=["commands"])
    merged = write_json_merged(path, {"variants": {"b": 2}, "commands": ["run b", "run a"], "date": "2"},
                               ["variants"], lists=["commands"])
    assert merged == {"variants": {"a": 1, "b": 2}, "commands": ["run a", "run b"], "date": "2"}
    assert json.loads(path.read_text()) == merged
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temp file left behind


def test_command_line_quotes_arguments_so_it_can_be_retyped() -> None:
    import shlex

    line = command_line(["scripts/bench_x.py", "--variants", "a b,c", "--lr", "2e-5"])
    assert line.startswith("python ") or line.startswith("nice -n ")
    assert shlex.split(line)[-5:] == ["scripts/bench_x.py", "--variants", "a b,c", "--lr", "2e-5"]
