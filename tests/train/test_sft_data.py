"""SFT examples: `sequences` rows predict exactly the targets the `prefixes` rows do, from the same contexts
with the loss only on SID tokens of items that are targets (each once)."""

from __future__ import annotations

import random
from collections import Counter

import pandas as pd
import pytest

from genrec.model import ModelConfig, build_model, codes_to_sid, sid_vocabulary


def _sources(lengths: list[int], n_items: int = 30, seed: int = 0):
    """Random users with `lengths[u]` training items each, as the data stage's train rows (history <= 20)."""
    from genrec.train.sft_data import SftSources

    rng = random.Random(seed)
    rows = []
    for user, length in enumerate(lengths):
        items = [str(rng.randrange(n_items)) for _ in range(length)]
        rows += [{"user_id": f"u{user}", "split": "train", "history": items[max(0, k - 20):k], "target": items[k]}
                 for k in range(1, length)]
    sid_of = {str(i): codes_to_sid((i // 9, i // 3 % 3, i % 3)) for i in range(n_items)}
    return SftSources(pd.DataFrame(rows), sid_of, {}, {})


def _builder(sources, max_history: int = 20, item_tokens: bool = False):
    from genrec.train.sft_data import ExampleBuilder

    config = ModelConfig(scratch={"hidden": 16, "layers": 1, "heads": 1, "intermediate": 32,
                                  "item_tokens": item_tokens})
    _, tokenizer, info = build_model(config, sid_vocabulary(list(sources.sid_of.values())), 3,
                                     max_history=max_history, item_ids=list(sources.sid_of))
    return ExampleBuilder(tokenizer, info, sources), tokenizer


def _labelled_items(rows, tokenizer) -> Counter:
    """(context item count, target SID) for every SID whose tokens all carry the loss, in every row."""
    from genrec.model.tokenizer import ans_token_id

    found = Counter()
    for ids, mask in rows:
        specials = (tokenizer.bos_token_id, tokenizer.eos_token_id, ans_token_id(tokenizer))
        tokens = tokenizer.convert_ids_to_tokens(ids)
        sids = [(pos, tok) for pos, (t, tok) in enumerate(zip(ids, tokens, strict=True))
                if t not in specials and not tok.startswith("<item:")]
        for k in range(0, len(sids), 3):
            labels = [mask[pos] for pos, _ in sids[k:k + 3]]
            assert len(set(labels)) == 1, "an item's SID tokens are all targets or all context"
            if labels[0]:
                found[(k // 3, "".join(tok for _, tok in sids[k:k + 3]))] += 1
    return found


@pytest.mark.parametrize("max_history,item_tokens", [(20, False), (4, False), (4, True)])
def test_sequences_predict_the_same_targets_as_prefixes(max_history: int, item_tokens: bool) -> None:
    from genrec.train.sft_data import train_examples

    sources = _sources([2, 3, 7, 12, 30])
    builder, tokenizer = _builder(sources, max_history, item_tokens)
    prefixes, _ = train_examples(builder, {"history": 1.0}, seed=0, history_rows="prefixes")
    sequences, counts = train_examples(builder, {"history": 1.0}, seed=0, history_rows="sequences")
    assert counts["history"] == 5  # one entry per user (long users give several windows)
    targets = Counter(sid for _, sid in _labelled_items(prefixes, tokenizer).elements())
    assert targets == Counter(sid for _, sid in _labelled_items(sequences, tokenizer).elements())
    assert sum(targets.values()) == 1 + 2 + 6 + 11 + 29  # every training item but each user's first, once
    assert sum(len(ids) for ids, _ in sequences) < sum(len(ids) for ids, _ in prefixes) / 2
    assert max(len(ids) for ids, _ in sequences) == max(len(ids) for ids, _ in prefixes)  # windows stay in bounds


def test_a_window_is_labelled_after_its_first_item_and_not_on_specials() -> None:
    from genrec.model.tokenizer import ans_token_id

    builder, tokenizer = _builder(_sources([4]))
    items = ["0", "1", "2", "3"]
    [(ids, mask)] = builder.user_windows("u0", items, first_target=1)
    labelled = [tokenizer.convert_ids_to_tokens(t) for t, m in zip(ids, mask, strict=True) if m]
    expected = [tok for item in items[1:] for tok in tokenizer.convert_ids_to_tokens(builder.sid_completion(item))
                if tok != tokenizer.eos_token or item == items[-1]]
    assert labelled == expected  # items 1..3's SID tokens and the final <eos>; no <bos>, <ans>, nor item 0
    assert ans_token_id(tokenizer) in ids and mask[ids.index(ans_token_id(tokenizer))] == 0


def test_rows_that_are_not_prefixes_of_one_sequence_are_refused() -> None:
    from genrec.train.sft_data import training_sequences

    rows = pd.DataFrame([{"user_id": "u", "history": ["a"], "target": "b"},
                         {"user_id": "u", "history": ["a", "c"], "target": "d"}])
    with pytest.raises(ValueError, match="user 'u'.*consecutive prefixes"):
        training_sequences(rows)


def test_sequences_need_a_scratch_model() -> None:
    from genrec.config import ConfigError
    from genrec.train.sft import SFTConfig

    with pytest.raises((ConfigError, ValueError), match="history_examples=sequences needs sft.model.kind=scratch"):
        SFTConfig.model_validate({"history_examples": "sequences", "model": {"kind": "llm"}})
