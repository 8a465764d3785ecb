"""The baselines stage's inputs: a distilled SASRec's teachers are inputs too, so retrained teachers re-run it."""

from __future__ import annotations

from pathlib import Path

from genrec.baselines.config import BaselinesConfig
from genrec.baselines.stage import inputs


def test_sasrec_teachers_are_stage_inputs(tmp_path: Path) -> None:
    plain = inputs(BaselinesConfig(), tmp_path)
    distilled = BaselinesConfig.model_validate({"sasrec": {"distill": {"teachers": ["a/model.pt", "b/model.pt"]}}})
    assert inputs(distilled, tmp_path) == [*plain, Path("a/model.pt"), Path("b/model.pt")]
    assert inputs(distilled.model_copy(update={"systems": ["mostpop"]}), tmp_path) == plain  # no SASRec, no teachers
