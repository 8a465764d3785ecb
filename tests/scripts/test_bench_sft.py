"""`scripts/bench_sft.py`: `--set` overrides read as `genrec --set` reads them, bad ones named before training."""

from __future__ import annotations

import pytest

from genrec.config import ConfigError
from test_report_scripts import load_script


def test_overrides_take_yaml_values_and_dotted_keys():
    bench = load_script("bench_sft")
    config = bench.variant_config("scratch", 1, [
        'model={"kind": "scratch", "scratch": {"hidden": 128, "layers": 2, "heads": 4, "intermediate": 512}}',
        "max_steps=null", "scheduler=linear", "model.scratch.dropout=0.1"])
    assert config.model.scratch.hidden == 128 and config.model.scratch.dropout == 0.1
    assert config.max_steps is None and config.scheduler == "linear" and config.threads == 1


def test_a_dotted_override_leaves_the_kind_defaults_alone():
    bench = load_script("bench_sft")
    bench.variant_config("scratch", 1, ["model.scratch.layers=4"])
    assert bench.variant_config("scratch", 1, []).model.scratch.layers == 2


@pytest.mark.parametrize(("kind", "override", "named"), [
    ("scratch", "schedulr=linear", "schedulr: unknown key"),
    ("scratch", "scheduler=lineer", "scheduler: Input should be"),
    ("scrach", "lr=0.1", "variant kind 'scrach' is not one of scratch, llm"),
])
def test_a_bad_override_or_kind_is_named(kind, override, named):
    with pytest.raises(ConfigError, match=named):
        load_script("bench_sft").variant_config(kind, 1, [override])
