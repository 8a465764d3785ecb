"""Multi-interest configs: one discriminated section per model; bad values fail naming the key."""

from __future__ import annotations

import pytest

from genrec.config import ConfigError
from genrec.pipeline import load_run_config


def test_each_model_section_parses_to_its_own_class() -> None:
    for name, cls in (("base", "BaseConfig"), ("gemirec", "GemiRecConfig"), ("ulim", "ULIMConfig"), ("dmi", "DMIConfig")):
        cfg = load_run_config(None, [f"multi.model.model={name}", "multi.model.interests=3"])
        assert type(cfg.multi.model).__name__ == cls
        assert cfg.multi.model.interests == 3
        assert cfg.multi.system_name == f"multi_{name}"


def test_a_model_section_without_a_tag_is_the_base() -> None:
    assert load_run_config(None, ["multi.model.hidden=32"]).multi.model.model == "base"


def test_multi_is_off_by_default() -> None:
    assert load_run_config(None).multi is None


@pytest.mark.parametrize(("override", "message"), [
    ("multi.model.interests=0", "interests"),
    ("multi.merge=best_guess", "merge"),
    ("multi.model.model=mind", "mind"),
    ("multi.model.dictionary_size=8", "dictionary_size"),  # a GemiRec key on the base model
])
def test_bad_configs_fail_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, [override])


def test_dmi_refinement_cannot_start_beyond_its_schedule() -> None:
    with pytest.raises(ConfigError, match="start_step"):
        load_run_config(None, ["multi.model.model=dmi", "multi.model.timesteps=5", "multi.model.start_step=6"])
