"""Prompt token ids: one function per prompt shape, each ending with `<ans>` (the SID or answer follows it).

Training and inference build prompts only here, so the ids a model was trained on are the ids it is
served with. `scratch` prompts are `<bos>` + the history's SID tokens + `<ans>`; `llm` prompts are short
English text around the SIDs (plus titles / interests when the checkpoint was trained with them).
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from genrec.model.config import ModelInfo
from genrec.model.tokenizer import ans_token_id, item_token_id, sid_token_ids


def _text_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [ans_token_id(tokenizer)]


def build_prompt_ids(tokenizer: PreTrainedTokenizerBase, info: ModelInfo, history_sids: Sequence[str],
                     interests: Sequence[str] | None = None, titles: Sequence[str] | None = None,
                     item_ids: Sequence[str] | None = None) -> list[int]:
    """Prompt for "which item comes next": the most recent `info.max_history` items, oldest first.

    `titles`, `item_ids` (aligned with `history_sids`) and `interests` are used when the checkpoint was trained
    with them (`info.titles`, `info.item_tokens`, `info.interests`) and ignored otherwise, so callers may always
    pass what they have; a checkpoint with item tokens needs `item_ids`.
    """
    for name, aligned in (("titles", titles), ("item ids", item_ids)):
        if aligned is not None and len(aligned) != len(history_sids):
            raise ValueError(f"{len(aligned)} {name} for {len(history_sids)} history items")
    start = len(history_sids) - min(info.max_history, len(history_sids))  # first item kept
    history = list(history_sids)[start:]
    if info.kind == "scratch":
        if info.item_tokens and item_ids is None:
            raise ValueError("this checkpoint reads item tokens: pass the history's item ids")
        ids = [tokenizer.bos_token_id]
        for position, sid in enumerate(history, start):
            ids += sid_token_ids(tokenizer, sid)
            if info.item_tokens:
                ids.append(item_token_id(tokenizer, item_ids[position]))
        return ids + [ans_token_id(tokenizer)]
    names = list(titles)[start:] if (info.titles and titles is not None) else None
    lines = [f"{sid} {names[i]}" if names else sid for i, sid in enumerate(history)]
    text = "Purchase history, oldest first:\n" + ("\n".join(lines) if lines else "(none)")
    if info.interests and interests:
        text += "\nThe user's interests: " + "; ".join(interests)
    return _text_ids(tokenizer, text + "\nNext item: ")


def interests_prompt_ids(tokenizer: PreTrainedTokenizerBase, interests: Sequence[str]) -> list[int]:
    """Prompt for "which item fits these interests" (llm kind; the SFT interest task)."""
    return _text_ids(tokenizer, "The user's interests: " + "; ".join(interests) + "\nNext item: ")


def title_to_sid_prompt_ids(tokenizer: PreTrainedTokenizerBase, title: str) -> list[int]:
    """Alignment prompt: an item's text, answered by its SID (llm kind)."""
    return _text_ids(tokenizer, f"Item: {title}\nSemantic ID: ")


def sid_to_title_prompt_ids(tokenizer: PreTrainedTokenizerBase, sid: str) -> list[int]:
    """Alignment prompt: an item's SID, answered by its title (llm kind)."""
    return _text_ids(tokenizer, f"Semantic ID: {sid}\nItem title: ")
