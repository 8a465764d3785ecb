"""Run configs: YAML + overrides, strict validation with messages naming the key."""

from pathlib import Path

import pytest

from genrec.config import ConfigError, apply_overrides, parse_override
from genrec.pipeline import load_run_config


def test_override_values_are_parsed_as_yaml() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("x=[1, 2]") == (["x"], [1, 2])
    assert apply_overrides({"a": {"b": 1}}, ["a.c=true"]) == {"a": {"b": 1, "c": True}}


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("a.b")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data:\n  name: scientific\n  max_histroy: 5\n")
    with pytest.raises(ConfigError, match=r"data\.max_histroy: unknown key"):
        load_run_config(cfg)


def test_wrong_type_is_named() -> None:
    with pytest.raises(ConfigError, match=r"data\.max_history"):
        load_run_config(None, ["data.max_history=lots"])


def test_missing_dataset_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset folder not found"):
        load_run_config(None, [f"data.path={tmp_path / 'nope'}"])


def test_missing_config_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml line"):
        load_run_config(bad)


def test_shipped_configs_validate() -> None:
    for path in sorted(Path("configs").glob("*.yaml")):
        try:
            load_run_config(path)
        except ConfigError as exc:  # datasets outside the repo may be absent on a user's machine
            assert "dataset folder not found" in str(exc), exc
