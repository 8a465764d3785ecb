"""Shared fixtures: tiny datasets built in the test, never downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def tiny_lcrec(tmp_path: Path) -> Path:
    """A 6-user, 8-item LC-Rec folder with item text."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    sequences = {
        "0": [0, 1, 2, 3, 4], "1": [1, 2, 3], "2": [5, 6, 7, 0, 1, 2],
        "3": [2, 3, 4, 5], "4": [7, 6, 5], "5": [0, 2, 4, 6, 7],
    }
    (folder / "Tiny.inter.json").write_text(json.dumps({k: v for k, v in sequences.items()}))
    items = {str(i): {"title": f"item {i}", "description": f"about {i}", "brand": "b", "categories": "c,d"} for i in range(8)}
    (folder / "Tiny.item.json").write_text(json.dumps(items))
    return folder


@pytest.fixture
def tiny_causal_lm(tmp_path: Path) -> Path:
    """A stand-in pretrained LM folder (word-level English tokenizer + random 1-layer Llama) for the `llm` kind."""
    from tiny_runs import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path / "tiny_causal_lm")
