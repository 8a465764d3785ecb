"""SidTrie: allowed sets, completeness, item lookup, the vectorised mask and the logits processor."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import torch

from genrec.decode.trie import SidTrie, SidTrieLogitsProcessor

EOS = 1
SEQS = [[10, 20, 30], [10, 20, 31], [10, 21, 30], [11, 20, 30]]
ITEMS = ["w", "x", "y", "z"]


@pytest.fixture
def trie() -> SidTrie:
    return SidTrie(ITEMS, SEQS, eos_token_id=EOS)


def test_allowed_sets_follow_prefixes(trie: SidTrie) -> None:
    assert trie.depth == 3 and len(trie) == 4
    assert trie.allowed([]) == [10, 11]
    assert trie.allowed([10]) == [20, 21]
    assert trie.allowed([10, 20]) == [30, 31]
    assert trie.allowed([11, 20]) == [30]
    assert trie.allowed([10, 20, 31]) == [EOS]
    assert trie.allowed([12]) == []


def test_every_path_is_an_item_and_nothing_else(trie: SidTrie) -> None:
    complete = []
    for a in trie.allowed([]):
        for b in trie.allowed([a]):
            complete += [[a, b, c] for c in trie.allowed([a, b])]
    assert sorted(complete) == sorted(SEQS)
    assert [trie.item_for(s) for s in SEQS] == ITEMS
    assert trie.item_for([10, 20]) is None and trie.item_for([10, 20, 32]) is None


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="same number of tokens"):
        SidTrie(["a", "b"], [[1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match="share one SID"):
        SidTrie(["a", "b"], [[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="zero items"):
        SidTrie([], [])


def test_vectorised_mask_matches_allowed(trie: SidTrie) -> None:
    prompt = [7, 7, 2]
    prefixes = [[], [10], [11], [10, 21], [10, 20, 31], [10, 20, 31, EOS], [12]]
    width = len(prompt) + max(len(p) for p in prefixes)
    rows, starts = [], []
    for prefix in prefixes:  # left-pad so every row ends at the same position, SIDs start at different places
        pad = width - len(prompt) - len(prefix)
        rows.append([0] * pad + prompt + prefix)
        starts.append(pad + len(prompt))
    mask = trie.allowed_mask(torch.tensor(rows), torch.tensor(starts), vocab_size=40)
    for row, prefix in enumerate(prefixes):
        expected = trie.allowed(prefix) or [EOS]  # outside the trie: only EOS
        if prefix[-1:] == [EOS]:
            expected = [EOS]
        assert torch.nonzero(mask[row]).flatten().tolist() == expected, prefix


def test_processor_adds_minus_inf_without_renormalising(trie: SidTrie) -> None:
    ans = 2
    scores = torch.log_softmax(torch.randn(3, 40), dim=-1)
    input_ids = torch.tensor([[5, ans, 10, 20], [ans, 10, 21, 30], [5, 6, ans, 11]])
    by_ans = SidTrieLogitsProcessor(trie, ans_token_id=ans)(input_ids, scores.clone())
    for row, prefix in enumerate([[10, 20], [10, 21, 30], [11]]):
        allowed = trie.allowed(prefix)
        assert torch.equal(by_ans[row, allowed], scores[row, allowed])  # raw log-probs kept
        others = [t for t in range(40) if t not in allowed]
        assert torch.isinf(by_ans[row, others]).all()
    by_len = SidTrieLogitsProcessor(trie, prompt_len=2)(input_ids[:1], scores[:1].clone())
    assert torch.equal(by_len, by_ans[:1])


def test_from_sid_map_uses_tokenizer_ids() -> None:
    from genrec.model.sid_tokens import sid_vocabulary
    from genrec.model.tokenizer import scratch_tokenizer

    sids = ["".join(f"<{l}_{c}>" for l, c in zip("abc", codes, strict=True))
            for codes in itertools.islice(itertools.product(range(2), range(3), range(2)), 9)]
    tokenizer = scratch_tokenizer(sid_vocabulary(sids))
    trie = SidTrie.from_sid_map(pd.DataFrame({"item_id": range(9), "sid": sids}), tokenizer)
    assert trie.eos_token_id == tokenizer.eos_token_id
    assert tokenizer.convert_ids_to_tokens(trie.allowed([])) == ["<a_0>", "<a_1>"]
    assert trie.item_for(tokenizer.convert_tokens_to_ids(["<a_0>", "<b_1>", "<c_1>"])) == "3"
