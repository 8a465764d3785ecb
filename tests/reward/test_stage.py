"""The label stage end to end: outputs and their schema, scores reproducible from the saved model, no
leakage of test targets, clear errors on bad input, the CLI command and the fine-tuning option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reward_fixtures import TINY_CONFIG, make_themed_run
from typer.testing import CliRunner

from genrec.artifacts import MissingInputError, RunPaths, read_manifest
from genrec.cli import app
from genrec.reward import LabelConfig, RewardModel, run
from genrec.reward.labels import INTEREST_COLUMNS
from genrec.reward.stage import scoring_contexts


def _labelled(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(RunPaths(run_dir).interests_labelled)


def test_stage_writes_schema_and_manifest(labelled_run: Path) -> None:
    paths = RunPaths(labelled_run)
    frame = _labelled(labelled_run)
    mined = pd.read_parquet(paths.interests)
    assert list(frame.columns) == [*INTEREST_COLUMNS, "score", "label", "threshold"]
    assert len(frame) == len(mined)
    assert frame["score"].between(0, 1).all()
    assert frame["threshold"].nunique() == 1
    assert (frame["label"] == (frame["score"] >= frame["threshold"]).astype(int)).all()
    assert 0 < frame["label"].sum() < len(frame)
    manifest = read_manifest(paths.stage_dir("label"))
    assert manifest is not None and manifest.counts["interests"] == len(frame)
    held = manifest.metrics["holdout"]
    assert held["pairs"] == manifest.counts["holdout_pairs"] > 0
    assert 0.0 <= held["user_roc_auc"] <= 1.0 and 0.0 <= held["cosine_roc_auc"] <= 1.0


def test_saved_model_reproduces_the_labelled_scores(labelled_run: Path) -> None:
    from genrec.data import load_items, load_sequences, training_items
    from genrec.reward.labels import item_texts

    frame = _labelled(labelled_run)
    model = RewardModel.load(RunPaths(labelled_run).reward_model)
    items = load_items(labelled_run)
    titles = dict(zip(items["item_id"], items["title"], strict=True))
    contexts = scoring_contexts(frame, training_items(load_sequences(labelled_run)), item_texts(items), titles)
    assert np.allclose(model.score(contexts, frame["interest"].tolist()), frame["score"], atol=1e-5)
    assert model.threshold == pytest.approx(frame["threshold"].iloc[0])


def test_interests_that_fit_the_user_score_higher(labelled_run: Path) -> None:
    frame = _labelled(labelled_run)
    users = frame[frame["kind"] == "user"].copy()
    users["slot"] = users.groupby("entity_id").cumcount()  # slots 0, 1 fit the user's theme; slot 2 does not
    fitting, other = users.loc[users["slot"] < 2, "score"].mean(), users.loc[users["slot"] == 2, "score"].mean()
    assert fitting > other + 0.1


def test_test_target_text_never_changes_labels(labelled_run: Path, tmp_path: Path) -> None:
    """Rename user 0's test target (an item nobody has in training): every other row is unchanged.

    The second run goes through `genrec label`, so this also covers the CLI command."""
    changed = make_themed_run(tmp_path, test_item_text="Soldering iron for circuit board repair")
    args = ["label", "--set", f"run_dir={changed}", "--set", "label.null_quantile=0.7",
            "--set", "label.head.epochs=10", "--set", "label.batch_size=64", "--set", "label.threads=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ROC-AUC" in result.output
    before, after = _labelled(labelled_run), _labelled(changed)
    test_item = str(len(pd.read_parquet(RunPaths(changed).items)) - 1)
    others = ~((before["kind"] == "item") & (before["entity_id"] == test_item))
    assert others.sum() == len(before) - 1
    assert before.loc[others, "label"].tolist() == after.loc[others, "label"].tolist()
    assert np.allclose(before.loc[others, "score"], after.loc[others, "score"], atol=1e-5)
    m_before = read_manifest(RunPaths(labelled_run).stage_dir("label"))
    m_after = read_manifest(RunPaths(changed).stage_dir("label"))
    assert m_before is not None and m_after is not None
    assert json.dumps(m_before.metrics["holdout"]) == json.dumps(m_after.metrics["holdout"])


def test_missing_interests_file_is_named(themed_run: Path) -> None:
    RunPaths(themed_run).interests.unlink()
    with pytest.raises(MissingInputError, match="interests.parquet"):
        run(TINY_CONFIG, themed_run)


def test_unknown_entity_and_missing_columns_are_named(themed_run: Path) -> None:
    path = RunPaths(themed_run).interests
    frame = pd.read_parquet(path)
    frame.loc[0, "entity_id"] = "no-such-user"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match="unknown user id.*no-such-user"):
        run(TINY_CONFIG, themed_run)
    frame.drop(columns=["evidence"]).to_parquet(path)
    with pytest.raises(ValueError, match=r"missing columns \['evidence'\]"):
        run(TINY_CONFIG, themed_run)


def test_cli_reports_a_missing_interests_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["label", "--set", f"run_dir={tmp_path}"])
    assert result.exit_code == 1
    assert "mine/interests.parquet" in result.output.replace("\n", "")


@pytest.mark.slow
def test_finetuned_encoder_is_saved_and_reloads(themed_run: Path) -> None:
    config = LabelConfig.model_validate({**TINY_CONFIG.model_dump(), "finetune": {"epochs": 1, "max_pairs": 48, "batch_size": 16}})
    run(config, themed_run)
    folder = RunPaths(themed_run).reward_model
    assert (folder / "encoder" / "config.json").is_file()
    assert json.loads((folder / "reward_model.json").read_text())["encoder"] == "encoder"
    frame = _labelled(themed_run)
    model = RewardModel.load(folder)
    first = frame[frame["kind"] == "item"].iloc[:4]
    from genrec.data import load_items
    from genrec.reward.labels import item_texts

    texts = item_texts(load_items(themed_run))
    scores = model.score([texts[e] for e in first["entity_id"]], first["interest"].tolist())
    assert np.allclose(scores, first["score"], atol=1e-5)
