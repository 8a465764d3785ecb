"""Checkpoints: a plain HF folder (config, model.safetensors, tokenizer) + `genrec.json` (`ModelInfo`).

LoRA adapters are merged before saving, so every checkpoint loads with `AutoModelForCausalLM` and vLLM. The
saved generation_config holds only the special token ids (a base LLM's sampling defaults are dropped).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedModel,
                          PreTrainedTokenizerBase)

from genrec.model.config import ModelInfo

INFO_FILE = "genrec.json"


def save_checkpoint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, path: Path) -> Path:
    """Write model (LoRA merged), tokenizer and `genrec.json` to `path`."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    # A neutral generation_config: nothing (sampling, temperature, penalties) for decoders to inherit by accident.
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / INFO_FILE).write_text(info.model_dump_json(indent=2) + "\n")
    return path


def load_info(path: Path) -> ModelInfo:
    """The `ModelInfo` of a checkpoint folder, failing clearly when it is not a genrec checkpoint."""
    file = Path(path) / INFO_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a genrec checkpoint: {INFO_FILE} missing (run `genrec sft` first)")
    return ModelInfo.model_validate(json.loads(file.read_text()))


def load_checkpoint(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelInfo]:
    """(model in eval mode, float32; tokenizer with left padding; info)."""
    info = load_info(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    return model, tokenizer, info
