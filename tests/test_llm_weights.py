"""The packaged SmolLM2 GGUF converts to a plain float32 HF folder that loads and generates."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from genrec.llm_weights import default_llm_path, smollm2_gguf_path


def test_gguf_is_found_without_importing_the_llm_plugin() -> None:
    assert smollm2_gguf_path().suffix == ".gguf"


def test_default_llm_folder_loads_and_generates() -> None:
    path = default_llm_path()
    assert default_llm_path() == path  # reused, not rebuilt
    assert not list(path.parent.glob(f".{path.name}.*"))  # no half-built temp folder left behind
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.dtype == torch.float32
    assert not hasattr(model.config, "quantization_config")
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
