"""`scripts/bench_seq2seq.py`: the T5 decoder starts at `<ans>` and the trie-constrained beam search over its
decoder returns the catalogue's items ranked by their exact sequence log-probs."""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from transformers import set_seed

from genrec.decode.trie import SidTrie
from genrec.model.sid_tokens import codes_to_sid, sid_vocabulary
from genrec.model.tokenizer import ans_token_id, scratch_tokenizer, sid_token_ids
from test_report_scripts import load_script


def sequence_logprob(model, prompt: list[int], sid: list[int], start: int) -> float:
    """Teacher-forced sum of the SID tokens' log-probs (what beam search ranks by)."""
    decoder = torch.tensor([[start, *sid]])
    logits = model(input_ids=torch.tensor([prompt]), decoder_input_ids=decoder[:, :-1]).logits
    logprobs = torch.log_softmax(logits[0], -1)
    return float(sum(logprobs[i, token] for i, token in enumerate(sid)))


def test_beam_search_returns_every_item_ranked_by_its_sequence_logprob():
    bench = load_script("bench_seq2seq")
    sids = [codes_to_sid(c) for c in [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 1), (2, 0, 1), (2, 2, 0)]]
    sid_map = pd.DataFrame({"item_id": [f"i{n}" for n in range(len(sids))], "sid": sids})
    tokenizer = scratch_tokenizer(sid_vocabulary(sids))
    trie = SidTrie.from_sid_map(sid_map, tokenizer)
    pad, eos, start = tokenizer.pad_token_id, tokenizer.eos_token_id, ans_token_id(tokenizer)
    set_seed(0)
    args = argparse.Namespace(hidden=32, heads=2, d_kv=None, ff=64, ff_act="gated-silu", encoder_layers=1,
                              decoder_layers=1, dropout=0.0)
    model = bench.t5_model(len(tokenizer), pad, eos, start, args).eval()
    prompts = [[tokenizer.bos_token_id, *sid_token_ids(tokenizer, sids[0]), start],
               [tokenizer.bos_token_id, *sid_token_ids(tokenizer, sids[3]), *sid_token_ids(tokenizer, sids[4]), start]]

    ranked = bench.t5_beam_search(model, prompts, trie, start, pad, num_beams=8, k=6, batch_size=2)

    for prompt, items in zip(prompts, ranked, strict=True):
        assert sorted(items) == sorted(sid_map["item_id"])  # every item, each once, nothing invented
        with torch.no_grad():
            exact = {item: sequence_logprob(model, prompt, sid_token_ids(tokenizer, sid), start)
                     for item, sid in zip(sid_map["item_id"], sid_map["sid"], strict=True)}
        assert items == sorted(exact, key=lambda item: -exact[item])
    assert model.generation_config.decoder_start_token_id == start  # the model's own config is put back
