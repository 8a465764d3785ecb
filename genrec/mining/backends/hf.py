"""`hf` backend: transformers batched `generate` with the chat template and left padding.

With `structured` (the default) every token is masked to the answer's JSON schema by xgrammar's logits
processor, as vLLM does; the 135M default writes no valid JSON without it. Runs on CUDA when there is one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from genrec.mining.backends.base import Generation, Sampling, batches, text_only
from genrec.mining.config import BackendConfig
from genrec.mining.prompts import Request
from genrec.mining.schema import answer_schema


def schema_constraint(tokenizer: AutoTokenizer, vocab_size: int) -> Callable[[], LogitsProcessor]:
    """A factory of logits processors that keep each sequence inside the answer schema (compact JSON).
    xgrammar's processor holds per-sequence state, so every `generate` call needs a new one."""
    import xgrammar as xgr
    from xgrammar.contrib.hf import LogitsProcessor as GrammarProcessor

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    grammar = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(answer_schema()), any_whitespace=False,
                                                            separators=(",", ":"))
    return lambda: GrammarProcessor(grammar)


class HFBackend:
    """Local transformers model (float32), JSON-schema constrained unless `structured: false`."""

    def __init__(self, config: BackendConfig, model_path: str):
        self.config, self.model_id = config, model_path
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(self.device).eval()
        self.constraint = (schema_constraint(self.tokenizer, self.model.config.vocab_size)
                           if config.structured else None)

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[tuple[int, Generation]]:
        eos = self.tokenizer.eos_token_id
        for chunk in batches(len(requests), self.config.batch_size):
            texts = [self.tokenizer.apply_chat_template(text_only(requests[i].messages), add_generation_prompt=True,
                                                        tokenize=False) for i in chunk]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            kwargs: dict = {"do_sample": False}
            if sampling.temperature > 0:
                kwargs = {"do_sample": True, "temperature": sampling.temperature}
                torch.manual_seed(sampling.seed or 0)
            if self.constraint is not None:
                kwargs["logits_processor"] = LogitsProcessorList([self.constraint()])
            with torch.inference_mode():
                out = self.model.generate(**enc, max_new_tokens=sampling.max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                          **kwargs)
            new = out[:, enc["input_ids"].shape[1]:].cpu()
            for row, i in zip(new, chunk, strict=True):
                ends = (row == eos).nonzero()
                n = int(ends[0, 0]) + 1 if len(ends) else len(row)
                yield i, Generation(self.tokenizer.decode(row[:n], skip_special_tokens=True), n)
