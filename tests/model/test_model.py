"""Model package: SID tokens, tokenizers, prompts, scratch/llm builds, checkpoint round trip, LoRA merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genrec.model import ModelConfig, ModelInfo, ScratchConfig, SidFormatError, codes_to_sid, parse_sid, sid_vocabulary
from genrec.model.build import build_model
from genrec.model.checkpoint import load_checkpoint, save_checkpoint
from genrec.model.config import LoraSettings
from genrec.model.prompt import build_prompt_ids
from genrec.model.tokenizer import ANS, sid_token_ids

SIDS = [codes_to_sid(c) for c in [(0, 1, 2), (1, 0, 0), (2, 3, 1), (0, 0, 0)]]
TINY = ScratchConfig(hidden=16, layers=1, heads=2, intermediate=32)


def test_sid_strings() -> None:
    assert codes_to_sid([12, 200, 7]) == "<a_12><b_200><c_7>"
    assert parse_sid("<a_1><b_2><c_3><d_0>") == ["<a_1>", "<b_2>", "<c_3>", "<d_0>"]
    for bad in ["", "<a_1><c_2>", "<a_1>x<b_2>", "<b_1><a_2>"]:
        with pytest.raises(SidFormatError):
            parse_sid(bad)
    vocab = sid_vocabulary(SIDS)
    assert vocab[:3] == ["<a_0>", "<a_1>", "<a_2>"] and "<b_3>" in vocab and "<c_2>" in vocab and len(vocab) == 3 + 4 + 3


def test_scratch_tokenizer_round_trip() -> None:
    model, tokenizer, info = build_model(ModelConfig(scratch=TINY), sid_vocabulary(SIDS), sid_levels=3)
    assert model.config.vocab_size == len(tokenizer) == 5 + 10
    ids = sid_token_ids(tokenizer, SIDS[2])
    assert len(ids) == 3 and tokenizer.decode(ids) == SIDS[2]
    assert tokenizer(SIDS[2] + ANS, add_special_tokens=False)["input_ids"] == ids + [tokenizer.convert_tokens_to_ids(ANS)]
    prompt = build_prompt_ids(tokenizer, info, SIDS[:2], interests=["x"], titles=["t0", "t1"])
    assert prompt[0] == tokenizer.bos_token_id and prompt[-1] == tokenizer.convert_tokens_to_ids(ANS)
    assert prompt[1:-1] == sid_token_ids(tokenizer, SIDS[0]) + sid_token_ids(tokenizer, SIDS[1])
    short = build_prompt_ids(tokenizer, info.model_copy(update={"max_history": 1}), SIDS[:2])
    assert short[1:-1] == sid_token_ids(tokenizer, SIDS[1])
    with pytest.raises(SidFormatError, match="unknown"):
        sid_token_ids(tokenizer, "<a_9><b_0><c_0>")


def test_item_tokens_follow_each_history_sid(tmp_path: Path) -> None:
    items = ["i0", "i1", "i2", "i3"]
    config = ModelConfig(scratch=TINY.model_copy(update={"item_tokens": True}))
    model, tokenizer, info = build_model(config, sid_vocabulary(SIDS), sid_levels=3, item_ids=items)
    assert info.item_tokens and model.config.vocab_size == len(tokenizer) == 5 + 10 + 4
    prompt = build_prompt_ids(tokenizer, info, SIDS[1:3], item_ids=items[1:3])
    item = tokenizer.convert_tokens_to_ids
    assert prompt[1:-1] == sid_token_ids(tokenizer, SIDS[1]) + [item("<item:i1>")] + \
        sid_token_ids(tokenizer, SIDS[2]) + [item("<item:i2>")]
    short = build_prompt_ids(tokenizer, info.model_copy(update={"max_history": 1}), SIDS[1:3], item_ids=items[1:3])
    assert short[1:-1] == sid_token_ids(tokenizer, SIDS[2]) + [item("<item:i2>")]
    save_checkpoint(model, tokenizer, info, tmp_path / "ckpt")  # the item vocabulary travels with the tokenizer
    _, tok2, info2 = load_checkpoint(tmp_path / "ckpt")
    assert build_prompt_ids(tok2, info2, SIDS[1:3], item_ids=items[1:3]) == prompt
    with pytest.raises(KeyError, match="'i9' has no item token"):
        build_prompt_ids(tokenizer, info, SIDS[:1], item_ids=["i9"])
    with pytest.raises(ValueError, match="pass the history's item ids"):
        build_prompt_ids(tokenizer, info, SIDS[:1])
    with pytest.raises(ValueError, match="whitespace"):
        build_model(config, sid_vocabulary(SIDS), sid_levels=3, item_ids=["a b"])
    with pytest.raises(ValueError, match="needs the catalogue"):
        build_model(config, sid_vocabulary(SIDS), sid_levels=3)


def test_scratch_rejects_text_features() -> None:
    with pytest.raises(ValueError, match="kind=llm"):
        ModelConfig(kind="scratch", titles=True)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model, tokenizer, info = build_model(ModelConfig(scratch=TINY), sid_vocabulary(SIDS), sid_levels=3)
    save_checkpoint(model, tokenizer, info, tmp_path / "ckpt")
    loaded, tok2, info2 = load_checkpoint(tmp_path / "ckpt")
    assert info2 == info and len(tok2) == len(tokenizer)
    prompt = torch.tensor([build_prompt_ids(tokenizer, info, SIDS)])
    assert build_prompt_ids(tok2, info2, SIDS) == prompt[0].tolist()
    with torch.no_grad():
        assert torch.allclose(model.eval()(prompt).logits, loaded(prompt).logits, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="genrec.json"):
        load_checkpoint(tmp_path)


def test_scratch_dropout_acts_in_training_only_and_is_not_saved(tmp_path: Path) -> None:
    config = ModelConfig(scratch=TINY.model_copy(update={"dropout": 0.5}))
    model, tokenizer, info = build_model(config, sid_vocabulary(SIDS), sid_levels=3)
    prompt = torch.tensor([build_prompt_ids(tokenizer, info, SIDS)])
    with torch.no_grad():
        model.train()
        assert not torch.allclose(model(prompt).logits, model(prompt).logits)  # residual dropout, not only attention
        model.eval()
        assert torch.equal(model(prompt).logits, model(prompt).logits)
        save_checkpoint(model, tokenizer, info, tmp_path / "ckpt")
        loaded, _, _ = load_checkpoint(tmp_path / "ckpt")
        loaded.train()  # a plain Llama: no hooks come back with the weights (attention dropout stays in its config)
        loaded.config.attention_dropout = 0.0
        for layer in loaded.model.layers:
            layer.self_attn.attention_dropout = 0.0
        assert torch.allclose(loaded(prompt).logits, model.eval()(prompt).logits, atol=1e-6)


def test_llm_lora_merges_into_a_plain_checkpoint(tmp_path: Path, tiny_causal_lm: Path) -> None:
    base = tiny_causal_lm
    config = ModelConfig(kind="llm", base_model=str(base), lora=LoraSettings(r=4, alpha=8, dropout=0.0), titles=True)
    model, tokenizer, info = build_model(config, sid_vocabulary(SIDS), sid_levels=3)
    assert tokenizer.pad_token is not None and len(tokenizer) == 20 + 10 + 2
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and not any(n.endswith("q_proj.base_layer.weight") for n in trainable)
    with torch.no_grad():  # make the adapters non-trivial so merging matters
        for name, param in model.named_parameters():
            if "lora_B" in name or "trainable_tokens" in name:
                param.add_(0.1 * torch.randn_like(param))
    prompt = build_prompt_ids(tokenizer, info, SIDS[:2], titles=["camping stove", "stove"])
    assert tokenizer.convert_tokens_to_ids("<a_0>") in prompt and tokenizer.convert_tokens_to_ids("camping") in prompt
    ids = torch.tensor([prompt])
    with torch.no_grad():
        expected = model.eval()(ids).logits
    save_checkpoint(model, tokenizer, info, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt" / "adapter_config.json").exists()
    loaded, tok2, info2 = load_checkpoint(tmp_path / "ckpt")
    assert info2.kind == "llm" and info2.titles and type(loaded).__name__ == "LlamaForCausalLM"
    assert build_prompt_ids(tok2, info2, SIDS[:2], titles=["camping stove", "stove"]) == prompt
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, expected, atol=1e-4)


def test_model_info_is_strict() -> None:
    with pytest.raises(ValueError):
        ModelInfo(kind="scratch", sid_levels=3, unknown=1)


def test_saved_generation_config_is_neutral(tmp_path: Path) -> None:
    model, tokenizer, info = build_model(ModelConfig(scratch=TINY), sid_vocabulary(SIDS), sid_levels=3)
    model.generation_config.do_sample, model.generation_config.temperature = True, 0.3
    save_checkpoint(model, tokenizer, info, tmp_path / "ckpt")
    loaded, _, _ = load_checkpoint(tmp_path / "ckpt")
    assert not loaded.generation_config.do_sample and loaded.generation_config.temperature in (None, 1.0)
    assert loaded.generation_config.eos_token_id == tokenizer.eos_token_id
