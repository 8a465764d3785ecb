"""`scripts/bench_seq2seq.py`: its T5 decodes from `<ans>` with the asked widths, and the checkpoint choice loads the
average of the best-probed epoch checkpoints (ties: the later step)."""

from __future__ import annotations

import argparse

import torch

from genrec.model.sid_tokens import codes_to_sid, sid_vocabulary
from genrec.model.tokenizer import ans_token_id, scratch_tokenizer
from test_report_scripts import load_script

ARGS = argparse.Namespace(hidden=32, heads=2, d_kv=None, ff=64, ff_act="gated-silu", encoder_layers=1,
                          decoder_layers=2, dropout=0.0)


def tiny_t5(bench):
    tokenizer = scratch_tokenizer(sid_vocabulary([codes_to_sid(c) for c in [(0, 0, 0), (1, 1, 1)]]))
    return bench.t5_model(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, ans_token_id(tokenizer),
                          ARGS), tokenizer


def test_t5_decodes_from_ans_with_the_asked_shape():
    model, tokenizer = tiny_t5(load_script("bench_seq2seq"))
    config = model.config
    assert config.decoder_start_token_id == ans_token_id(tokenizer) and config.pad_token_id == tokenizer.pad_token_id
    assert (config.d_model, config.d_kv, config.num_layers, config.num_decoder_layers) == (32, 16, 1, 2)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_choose_average_loads_the_mean_of_the_best_checkpoints(tmp_path):
    bench = load_script("bench_seq2seq")
    model, _ = tiny_t5(bench)
    for step, value in [(10, 1.0), (20, 3.0), (30, 2.0), (40, 3.0)]:
        with torch.no_grad():
            for param in model.parameters():
                param.fill_(value)
        model.save_pretrained(tmp_path / f"checkpoint-{step}")

    def probe() -> dict[str, float]:  # reads the loaded weights: NDCG@10 = the value the checkpoint was filled with
        return {"ndcg@10": next(model.parameters()).detach().flatten()[0].item()}

    curve, best = bench.choose_average(model, tmp_path, probe, average_top=2)

    assert [c["step"] for c in curve] == [10, 20, 30, 40]
    assert [c["step"] for c in best] == [40, 20]  # equal probe: the later step first
    assert all(torch.allclose(p, torch.full_like(p, 3.0)) for p in model.parameters())
    curve, best = bench.choose_average(model, tmp_path, probe, average_top=3)
    assert [c["step"] for c in best] == [40, 20, 30]
    assert all(torch.allclose(p, torch.full_like(p, 8.0 / 3)) for p in model.parameters())
