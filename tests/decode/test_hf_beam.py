"""Constrained beam search with transformers: valid distinct items, exact scores, no inherited generation params."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from genrec.decode.hf_beam import constrained_beam_search, search_groups
from genrec.decode.interest import Group
from genrec.decode.trie import SidTrie
from genrec.model.build import build_model
from genrec.model.config import ModelConfig, ScratchConfig
from genrec.model.prompt import build_prompt_ids
from genrec.model.sid_tokens import codes_to_sid, sid_vocabulary
from genrec.model.tokenizer import ans_token_id, sid_token_ids


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    codes = list(itertools.product(range(3), range(3), range(2)))[:14]
    sids = [codes_to_sid(c) for c in codes]
    config = ModelConfig(scratch=ScratchConfig(hidden=32, layers=1, heads=2, intermediate=64))
    model, tokenizer, info = build_model(config, sid_vocabulary(sids), sid_levels=3)
    model.eval()
    trie = SidTrie.from_sid_map(pd.DataFrame({"item_id": [f"it{i}" for i in range(14)], "sid": sids}), tokenizer)
    prompts = [build_prompt_ids(tokenizer, info, sids[:n]) for n in (1, 4, 2, 6, 3)]
    return model, tokenizer, trie, sids, prompts


def exact_scores(model, prompt: list[int], trie: SidTrie, sids: list[str], tokenizer) -> dict[str, float]:
    """Brute force: log p(SID | prompt) of every item, from one forward pass each."""
    out = {}
    for item, sid in zip(trie.item_ids, sids, strict=True):
        ids = tokenizer.convert_tokens_to_ids([sid[i:i + 5].strip() for i in range(0, len(sid), 5)])
        tokens = torch.tensor([prompt + ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(tokens).logits[0].float(), -1)
        out[item] = sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(ids))
    return out


def test_returns_valid_distinct_items_best_first(setup) -> None:
    model, _, trie, _, prompts = setup
    results = constrained_beam_search(model, prompts, trie, num_beams=6, k=5, batch_size=2)
    assert len(results) == len(prompts)
    for ranked in results:
        items = [item for item, _ in ranked]
        assert len(items) == 5 and len(set(items)) == 5
        assert set(items) <= set(trie.item_ids)
        scores = [s for _, s in ranked]
        assert scores == sorted(scores, reverse=True)


def test_wide_beam_is_exact(setup) -> None:
    """With as many beams as items, beam search keeps everything: ranks and scores equal brute force."""
    model, tokenizer, trie, sids, prompts = setup
    results = constrained_beam_search(model, prompts[:3], trie, num_beams=14, k=14, batch_size=3)
    for prompt, ranked in zip(prompts[:3], results, strict=True):
        exact = exact_scores(model, prompt, trie, sids, tokenizer)
        assert [item for item, _ in ranked] == sorted(exact, key=lambda i: -exact[i])
        for item, score in ranked:
            assert score == pytest.approx(exact[item], abs=1e-4)


def test_batching_does_not_change_results(setup) -> None:
    model, _, trie, _, prompts = setup
    one = constrained_beam_search(model, prompts, trie, num_beams=8, k=8, batch_size=1)
    many = constrained_beam_search(model, prompts, trie, num_beams=8, k=8, batch_size=5)
    for a, b in zip(one, many, strict=True):
        assert [i for i, _ in a] == [i for i, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)


def test_ignores_the_models_generation_config(setup) -> None:
    model, _, trie, _, prompts = setup
    clean = constrained_beam_search(model, prompts, trie, num_beams=8, k=8, batch_size=5)
    saved = model.generation_config
    poisoned = saved.__class__(do_sample=True, temperature=0.05, top_k=2, top_p=0.5, num_beams=1, max_new_tokens=1,
                               num_return_sequences=1, repetition_penalty=5.0, no_repeat_ngram_size=1,
                               length_penalty=3.0, forced_eos_token_id=trie.eos_token_id, min_new_tokens=1)
    model.generation_config = poisoned
    try:
        dirty = constrained_beam_search(model, prompts, trie, num_beams=8, k=8, batch_size=5)
    finally:
        model.generation_config = saved
    assert model.generation_config is saved
    for a, b in zip(clean, dirty, strict=True):
        assert [i for i, _ in a] == [i for i, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)


def test_bad_arguments(setup) -> None:
    model, _, trie, _, prompts = setup
    with pytest.raises(ValueError, match="num_beams"):
        constrained_beam_search(model, prompts, trie, num_beams=4, k=5, batch_size=2)
    with pytest.raises(ValueError, match="empty prompt"):
        constrained_beam_search(model, [[]], trie, num_beams=4, k=2, batch_size=2)


def test_peft_wrapped_model_searches_with_its_adapters(setup) -> None:
    """A LoRA-wrapped model (the llm kind during SFT) gives the same lists as its merged copy."""
    import copy

    from peft import LoraConfig, get_peft_model

    model, _, trie, _, prompts = setup
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.get_base_model().generation_config.do_sample = True  # must not leak through the wrapper
    wrapped = constrained_beam_search(peft_model, prompts, trie, num_beams=8, k=8, batch_size=5)
    merged = constrained_beam_search(peft_model.merge_and_unload(), prompts, trie, num_beams=8, k=8, batch_size=5)
    plain = constrained_beam_search(model, prompts, trie, num_beams=8, k=8, batch_size=5)
    assert [[i for i, _ in r] for r in wrapped] == [[i for i, _ in r] for r in merged]
    assert [[round(s, 4) for _, s in r] for r in wrapped] != [[round(s, 4) for _, s in r] for r in plain]


@pytest.fixture(scope="module")
def seq2seq(setup):
    """A tiny T5 over the same SID tokenizer: the encoder reads the prompt, the decoder starts from `<ans>`."""
    _, tokenizer, trie, sids, prompts = setup
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1,
                      num_heads=2, dropout_rate=0.0, feed_forward_proj="gated-silu",
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=ans_token_id(tokenizer))
    return T5ForConditionalGeneration(config).eval(), tokenizer, trie, sids, prompts


def test_encoder_decoder_wide_beam_is_exact(seq2seq) -> None:
    """The SID is read after the decoder's start token: with as many beams as items, the ranking and scores equal
    the teacher-forced log-probs of every item."""
    model, tokenizer, trie, sids, prompts = seq2seq
    results = constrained_beam_search(model, prompts[:3], trie, num_beams=14, k=14, batch_size=2)
    start = model.config.decoder_start_token_id
    for prompt, ranked in zip(prompts[:3], results, strict=True):
        exact = {}
        for item, sid in zip(trie.item_ids, sids, strict=True):
            ids = sid_token_ids(tokenizer, sid)
            with torch.no_grad():
                decoder = torch.tensor([[start, *ids[:-1]]])
                logits = model(input_ids=torch.tensor([prompt]), decoder_input_ids=decoder).logits
            logp = torch.log_softmax(logits[0], -1)
            exact[item] = sum(logp[j, t].item() for j, t in enumerate(ids))
        assert [item for item, _ in ranked] == sorted(exact, key=lambda i: -exact[i])
        for item, score in ranked:
            assert score == pytest.approx(exact[item], abs=1e-4)
    assert model.generation_config.decoder_start_token_id == start  # the model's own config is put back


def test_encoder_decoder_refuses_forced_prefixes(seq2seq) -> None:
    model, _, trie, _, prompts = seq2seq
    group = Group(request=0, interest="x", weight=1.0, prefix=(trie.first_token(trie.item_ids[0]),), prefix_score=0.0,
                  beams=4, quota=4)
    with pytest.raises(ValueError, match="decoder-only"):
        search_groups(model, prompts, [group], trie, batch_size=2)
