"""Constrained beam search with transformers: the reference decoder (eval, GRPO checks, serving fallback).

Every generation parameter is explicit in a fresh `GenerationConfig`. That alone is not enough in
transformers 5.19: `generate` fills every parameter left at None in the passed config from
`model.generation_config` (`_prepare_generation_config`, `defaults_only=True`), so a checkpoint whose
generation_config says `do_sample=True`, `temperature=0.6`, `repetition_penalty`, `forced_eos_token_id`, ...
would leak into the search. We therefore also blank `model.generation_config` for the duration of the call.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence

import torch
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedModel

from genrec.decode.interest import Group, MergeRule, Recommendation, Select, interest_search
from genrec.decode.trie import SidTrie, SidTrieLogitsProcessor


@contextlib.contextmanager
def blank_generation_config(model: PreTrainedModel) -> Iterator[None]:
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


def _unwrap(model: PreTrainedModel) -> PreTrainedModel:
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: adapters stay active


def pad_id(model: PreTrainedModel, trie: SidTrie) -> int:
    """The pad token of left-padded prompts: the model's own, else the end of sequence."""
    if trie.eos_token_id is None:
        raise ValueError("the trie needs eos_token_id")
    return model.config.pad_token_id if model.config.pad_token_id is not None else trie.eos_token_id


def _search_rows(model: PreTrainedModel, rows: Sequence[Sequence[int]], prefix_len: int, trie: SidTrie,
                 num_beams: int) -> list[list[tuple[str, float]]]:
    """One `generate` call. Each row is a prompt followed by a forced SID prefix of `prefix_len` tokens; per
    row, its distinct complete items with the summed log-probs of the generated tokens, best first. An
    encoder-decoder model reads the prompt in its encoder and writes the SID after its decoder start token."""
    pad = pad_id(model, trie)
    input_ids, attention_mask = left_pad(rows, pad)
    gen_config = beam_generation_config(num_beams, trie.depth - prefix_len, pad, trie.eos_token_id)
    if model.config.is_encoder_decoder:
        if prefix_len:
            raise ValueError("forced SID prefixes (interest decoding) need a decoder-only model")
        gen_config.decoder_start_token_id = model.config.decoder_start_token_id
        sid_start = 1
    else:
        sid_start = input_ids.shape[1] - prefix_len
    processor = SidTrieLogitsProcessor(trie, prompt_len=sid_start)
    out = model.generate(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                         generation_config=gen_config, logits_processor=LogitsProcessorList([processor]))
    return distinct_items(out.sequences[:, sid_start:sid_start + trie.depth], out.sequences_scores, trie, num_beams)


def distinct_items(sids: torch.Tensor, scores: torch.Tensor, trie: SidTrie,
                   num_beams: int) -> list[list[tuple[str, float]]]:
    """`generate`'s beams (`num_beams` consecutive rows per prompt: SID tokens and summed log-probs) -> per prompt,
    its distinct complete items with their best beam's score, best first."""
    sids_list, scores_list = sids.cpu().tolist(), scores.cpu().tolist()
    results = []
    for first in range(0, len(sids_list), num_beams):
        ranked: dict[str, float] = {}
        for beam in range(first, first + num_beams):
            item = trie.item_for(sids_list[beam])
            if item is not None and scores_list[beam] != float("-inf") and item not in ranked:
                ranked[item] = scores_list[beam]
        results.append(sorted(ranked.items(), key=lambda kv: -kv[1]))
    return results


@torch.inference_mode()
def constrained_beam_search(model: PreTrainedModel, prompts: list[list[int]], trie: SidTrie, num_beams: int, k: int,
                            batch_size: int) -> list[list[tuple[str, float]]]:
    """Per prompt, the top-k distinct valid items with their scores (sum of raw log-probs of the SID tokens),
    best first. Fewer than k only when fewer than k items exist. Prompts are batched by length (less padding),
    results come back in the given order."""
    if not 1 <= k <= num_beams:
        raise ValueError(f"k={k} must be between 1 and num_beams={num_beams}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if any(not p for p in prompts):
        raise ValueError("empty prompt: every prompt needs at least the <ans> marker")
    model = _unwrap(model)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[list[tuple[str, float]]] = [[] for _ in prompts]
    with blank_generation_config(model):
        for first in range(0, len(order), batch_size):
            chunk = order[first:first + batch_size]
            for i, ranked in zip(chunk, _search_rows(model, [prompts[i] for i in chunk], 0, trie, num_beams), strict=True):
                results[i] = ranked[:k]
    return results


@torch.inference_mode()
def root_logprobs(model: PreTrainedModel, prompts: Sequence[Sequence[int]], trie: SidTrie,
                  batch_size: int) -> list[dict[int, float]]:
    """Per prompt, the raw log-prob of every first-level SID token the trie allows (one forward pass)."""
    model = _unwrap(model)
    allowed = torch.tensor(trie.allowed([]), dtype=torch.long)
    out: list[dict[int, float]] = []
    for first in range(0, len(prompts), batch_size):
        input_ids, mask = left_pad(prompts[first:first + batch_size], pad_id(model, trie))
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded rows
        logits = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device),
                       position_ids=positions.to(model.device)).logits[:, -1].float()
        logprobs = torch.log_softmax(logits, -1)[:, allowed].cpu()
        out += [dict(zip(allowed.tolist(), row.tolist(), strict=True)) for row in logprobs]
    return out


@torch.inference_mode()
def search_groups(model: PreTrainedModel, prompts: Sequence[Sequence[int]], groups: Sequence[Group], trie: SidTrie,
                  batch_size: int) -> list[list[tuple[str, float]]]:
    """Per beam group, its distinct complete items (the prefix's score included), best first, decoded from the
    group's prompt (its own, else its request's). Groups with the same beam width and prefix length share
    `generate` calls of up to `batch_size` rows."""
    model = _unwrap(model)
    buckets: dict[tuple[int, int], list[int]] = {}
    for index, group in enumerate(groups):
        buckets.setdefault((group.beams, len(group.prefix)), []).append(index)
    results: list[list[tuple[str, float]]] = [[] for _ in groups]
    with blank_generation_config(model):
        for (beams, prefix_len), members in sorted(buckets.items()):
            for first in range(0, len(members), batch_size):
                chunk = members[first:first + batch_size]
                rows = [[*groups[g].prompt_of(prompts), *groups[g].prefix] for g in chunk]
                for g, ranked in zip(chunk, _search_rows(model, rows, prefix_len, trie, beams), strict=True):
                    results[g] = [(item, score + groups[g].prefix_score) for item, score in ranked]
    return results


def interest_beam_search(model: PreTrainedModel, prompts: list[list[int]], trie: SidTrie, num_beams: int, k: int,
                         batch_size: int, select: Select, rule: MergeRule = MergeRule()) -> list[list[Recommendation]]:
    """Interest-conditioned decoding (`genrec.decode.interest`) with transformers."""
    if any(not p for p in prompts):
        raise ValueError("empty prompt: every prompt needs at least the <ans> marker")
    return interest_search(functools.partial(root_logprobs, model, trie=trie, batch_size=batch_size),
                           functools.partial(search_groups, model, trie=trie, batch_size=batch_size),
                           prompts, num_beams, k, select, trie.first_token, rule)
