"""Fixtures of the reward tests (builders live in reward_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reward_fixtures import TINY_CONFIG, make_themed_run


@pytest.fixture
def themed_run(tmp_path: Path) -> Path:
    return make_themed_run(tmp_path)


@pytest.fixture(scope="session")
def labelled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A themed run with the label stage already run once (shared: the stage is the slow part)."""
    from genrec.reward import run

    run_dir = make_themed_run(tmp_path_factory.mktemp("labelled"))
    run(TINY_CONFIG, run_dir)
    return run_dir
