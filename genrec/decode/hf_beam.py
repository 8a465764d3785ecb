"""Constrained beam search with transformers: the reference decoder (eval, GRPO checks, serving fallback).

Every generation parameter is explicit in a fresh `GenerationConfig`. That alone is not enough in
transformers 5.19: `generate` fills every parameter left at None in the passed config from
`model.generation_config` (`_prepare_generation_config`, `defaults_only=True`), so a checkpoint whose
generation_config says `do_sample=True`, `temperature=0.6`, `repetition_penalty`, `forced_eos_token_id`, ...
would leak into the search. We therefore also blank `model.generation_config` for the duration of the call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedModel

from genrec.decode.trie import SidTrie, SidTrieLogitsProcessor


@contextlib.contextmanager
def _blank_generation_config(model: PreTrainedModel) -> Iterator[None]:
    """Hide the model's own generation_config (nothing may be inherited from it) during one call."""
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def beam_generation_config(num_beams: int, sid_len: int, pad_token_id: int, eos_token_id: int) -> GenerationConfig:
    """Deterministic beam search over exactly `sid_len` new tokens, returning every beam, scored by the
    plain sum of token log-probs (length_penalty=0; all SIDs have the same length anyway)."""
    return GenerationConfig(
        do_sample=False, num_beams=num_beams, num_return_sequences=num_beams, num_beam_groups=1,
        max_new_tokens=sid_len, min_new_tokens=0, temperature=None, top_k=None, top_p=None,
        repetition_penalty=1.0, no_repeat_ngram_size=0, length_penalty=0.0, early_stopping=True,
        pad_token_id=pad_token_id, eos_token_id=eos_token_id, bos_token_id=None, forced_bos_token_id=None,
        forced_eos_token_id=None, suppress_tokens=None, begin_suppress_tokens=None, bad_words_ids=None,
        use_cache=True, output_scores=True, return_dict_in_generate=True,
    )


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) with prompts right-aligned (left padding)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt):] = 1
    return ids, mask


@torch.inference_mode()
def constrained_beam_search(model: PreTrainedModel, prompts: list[list[int]], trie: SidTrie, num_beams: int, k: int,
                            batch_size: int) -> list[list[tuple[str, float]]]:
    """Per prompt, the top-k distinct valid items with their scores (sum of raw log-probs of the SID tokens),
    best first. Fewer than k only when fewer than k items exist."""
    if not 1 <= k <= num_beams:
        raise ValueError(f"k={k} must be between 1 and num_beams={num_beams}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if any(not p for p in prompts):
        raise ValueError("empty prompt: every prompt needs at least the <ans> marker")
    model = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: adapters stay active
    eos = trie.eos_token_id
    if eos is None:
        raise ValueError("the trie needs eos_token_id")
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else eos
    gen_config = beam_generation_config(num_beams, trie.depth, pad, eos)
    results: list[list[tuple[str, float]]] = []
    with _blank_generation_config(model):
        for first in range(0, len(prompts), batch_size):
            chunk = prompts[first:first + batch_size]
            input_ids, attention_mask = left_pad(chunk, pad)
            input_ids, attention_mask = input_ids.to(model.device), attention_mask.to(model.device)
            processor = SidTrieLogitsProcessor(trie, prompt_len=input_ids.shape[1])
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=gen_config,
                                 logits_processor=LogitsProcessorList([processor]))
            sids = out.sequences[:, input_ids.shape[1]:input_ids.shape[1] + trie.depth].cpu().tolist()
            scores = out.sequences_scores.cpu().tolist()
            for row in range(len(chunk)):
                ranked: dict[str, float] = {}
                for beam in range(row * num_beams, (row + 1) * num_beams):
                    item = trie.item_for(sids[beam])
                    if item is not None and scores[beam] != float("-inf") and item not in ranked:
                        ranked[item] = scores[beam]
                results.append(sorted(ranked.items(), key=lambda kv: -kv[1])[:k])
    return results
