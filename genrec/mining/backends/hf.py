"""`hf` backend: transformers batched `generate` with the chat template and left padding."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from genrec.mining.backends.base import Generation, Sampling, batches, text_only
from genrec.mining.config import BackendConfig
from genrec.mining.prompts import Request


class HFBackend:
    """Local transformers model (float32). Free-form: transformers has no JSON-schema constraint."""

    def __init__(self, config: BackendConfig, model_path: str):
        self.config, self.model_id = config, model_path
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[tuple[int, Generation]]:
        eos = self.tokenizer.eos_token_id
        for chunk in batches(len(requests), self.config.batch_size):
            texts = [self.tokenizer.apply_chat_template(text_only(requests[i].messages), add_generation_prompt=True,
                                                        tokenize=False) for i in chunk]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs = {"do_sample": False}
            if sampling.temperature > 0:
                kwargs = {"do_sample": True, "temperature": sampling.temperature}
                torch.manual_seed(sampling.seed or 0)
            with torch.inference_mode():
                out = self.model.generate(**enc, max_new_tokens=sampling.max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                          **kwargs)
            new = out[:, enc["input_ids"].shape[1]:]
            for row, i in zip(new, chunk, strict=True):
                ends = (row == eos).nonzero()
                n = int(ends[0, 0]) + 1 if len(ends) else len(row)
                yield i, Generation(self.tokenizer.decode(row[:n], skip_special_tokens=True), n)
