"""Build a fresh generative model + tokenizer for a SID vocabulary: `scratch` or `llm` (optionally LoRA)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedModel
from transformers import PreTrainedTokenizerBase

from genrec.model.config import ModelConfig, ModelInfo
from genrec.model.tokenizer import add_sid_tokens, scratch_tokenizer


def scratch_model(config: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    """A small Llama decoder whose vocabulary is exactly the tokenizer's (specials + SID tokens)."""
    s = config.scratch
    llama = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s.hidden, intermediate_size=s.intermediate,
        num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads or s.heads,
        max_position_embeddings=s.max_positions, attention_dropout=s.dropout, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(llama).to(torch.float32)
    if s.dropout:
        add_residual_dropout(model, s.dropout)
    return model


def add_residual_dropout(model: LlamaForCausalLM, p: float) -> None:
    """Dropout (training only) on the token embeddings and on each attention / MLP output before it joins the
    residual stream. HF Llama has only attention-probability dropout, and a small decoder on ~30k next-item
    examples overfits without more (SASRec uses 0.5). Forward hooks are not saved: checkpoints stay plain Llama."""
    def drop(module: torch.nn.Module, args: tuple, output):
        if isinstance(output, tuple):  # attention returns (output, weights)
            return (F.dropout(output[0], p, module.training), *output[1:])
        return F.dropout(output, p, module.training)

    base = model.model
    for module in [base.embed_tokens, *(layer.self_attn for layer in base.layers), *(layer.mlp for layer in base.layers)]:
        module.register_forward_hook(drop)


def llm_model(config: ModelConfig, sid_vocab: Sequence[str]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A pretrained causal LM with the SID tokens added (embeddings resized, new rows mean-initialised),
    wrapped with LoRA adapters when `config.lora` is set (the new token rows stay trainable)."""
    if config.base_model:
        path = config.base_model
    else:
        from genrec.llm_weights import default_llm_path

        path = str(default_llm_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    new_ids = add_sid_tokens(tokenizer, sid_vocab)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    if config.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                          target_modules="all-linear", task_type="CAUSAL_LM",
                          trainable_token_indices={"embed_tokens": new_ids})
        model = get_peft_model(model, lora)
        head = model.get_output_embeddings()
        if not hasattr(head, "bias"):
            # peft 0.21 wraps a tied lm_head in TrainableTokensWrapper, which exposes `.weight` (with the trained
            # token rows merged in) but not `.bias`; trl 1.16's fused LM-head loss reads both. The head has none.
            head.bias = None
    return model, tokenizer


def build_model(config: ModelConfig, sid_vocab: Sequence[str], sid_levels: int,
                max_history: int = 20, max_interests: int = 5, item_ids: Sequence[str] = ()
                ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelInfo]:
    """A fresh model, its tokenizer and the `ModelInfo` describing its prompts. `item_ids` (the catalogue)
    get input tokens when `config.scratch.item_tokens` is set."""
    item_tokens = config.kind == "scratch" and config.scratch.item_tokens
    info = ModelInfo(kind=config.kind, sid_levels=sid_levels, titles=config.titles, interests=config.interests,
                     item_tokens=item_tokens, max_history=max_history, max_interests=max_interests,
                     base_model=config.base_model)
    if config.kind == "scratch":
        if item_tokens and not item_ids:
            raise ValueError("model.scratch.item_tokens needs the catalogue's item ids")
        tokenizer = scratch_tokenizer(sid_vocab, item_ids if item_tokens else ())
        per_item = sid_levels + int(item_tokens)
        needed = max_history * per_item + sid_levels + 2  # <bos> history <ans> SID
        if needed > config.scratch.max_positions:
            raise ValueError(f"model.scratch.max_positions={config.scratch.max_positions} < {needed} tokens a prompt + SID needs")
        return scratch_model(config, tokenizer), tokenizer, info
    model, tokenizer = llm_model(config, sid_vocab)
    return model, tokenizer, info
