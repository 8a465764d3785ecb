"""`scripts/bench_ensemble.py`: the re-ranking scores candidates by the members' mean SID log-prob, the score beam
search ranks by, so one model with itself keeps its beam order, and two models order by their mean."""

from __future__ import annotations

import pandas as pd
import torch

from genrec.decode.hf_beam import constrained_beam_search
from genrec.decode.trie import SidTrie
from genrec.model import ModelConfig, ScratchConfig, build_model, sid_vocabulary
from genrec.model.tokenizer import sid_token_ids
from genrec.train.grpo import sid_logprobs
from test_report_scripts import load_script

SIDS = {str(i): f"<a_{i % 2}><b_{i % 3}><c_{i}>" for i in range(8)}


def tiny_model(seed: int):
    torch.manual_seed(seed)
    return build_model(ModelConfig(scratch=ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32)),
                       sid_vocabulary(SIDS.values()), sid_levels=3)[:2]


def test_one_model_keeps_its_beam_order_and_two_order_by_their_mean() -> None:
    bench = load_script("bench_ensemble")
    model, tokenizer = tiny_model(0)
    other, _ = tiny_model(1)
    trie = SidTrie.from_sid_map(pd.DataFrame({"item_id": list(SIDS), "sid": list(SIDS.values())}), tokenizer)
    prompt = [tokenizer.bos_token_id, *sid_token_ids(tokenizer, SIDS["3"]), tokenizer.convert_tokens_to_ids("<ans>")]
    beams = [item for item, _ in constrained_beam_search(model, [prompt], trie, num_beams=8, k=8, batch_size=1)[0]]
    candidates = {item: sid_token_ids(tokenizer, SIDS[item]) for item in sorted(beams)}  # order must not matter

    assert bench.ensemble_rank([model, model], prompt, candidates, tokenizer.pad_token_id) == beams

    mean = {item: sum(sid_logprobs(m, [prompt], [sid], tokenizer.pad_token_id)[0] for m in (model, other)) / 2
            for item, sid in candidates.items()}
    together = bench.ensemble_rank([model, other], prompt, candidates, tokenizer.pad_token_id)
    assert together == sorted(mean, key=lambda item: -mean[item]) and together != beams
