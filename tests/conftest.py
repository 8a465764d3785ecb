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
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", "Purchase", "history,", "oldest", "first:", "Next", "item:", "Item:", "Semantic",
             "ID:", "title:", "The", "user's", "interests:", "(none)", "camping", "stove", "item"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True,
                                         bos_token_id=1, eos_token_id=2))
    folder = tmp_path / "tiny_causal_lm"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
