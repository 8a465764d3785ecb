"""The trie of valid SID token sequences, and the logits processor that confines generation to it.

Nodes are numbered (root = 0); each edge (node, token) -> child is stored as a sorted int64 key
`node * stride + token`, so a whole batch of rows advances one token with one `searchsorted`. The tokens
allowed after each node sit in CSR arrays (`_ptr`, `_tok`), so the batch's mask is one scatter. A complete
SID allows only EOS; so does a row that has left the trie (finished, or padded after EOS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import LogitsProcessor

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedTokenizerBase


class SidTrie:
    """Valid SIDs as token-id sequences (all of length `depth`), each mapped to its item id."""

    def __init__(self, item_ids: Sequence[str], token_seqs: Sequence[Sequence[int]], eos_token_id: int | None = None):
        if len(item_ids) != len(token_seqs):
            raise ValueError(f"{len(item_ids)} item ids but {len(token_seqs)} token sequences")
        if not item_ids:
            raise ValueError("cannot build a SID trie from zero items")
        depths = {len(seq) for seq in token_seqs}
        if len(depths) != 1:
            raise ValueError(f"every SID must have the same number of tokens, got lengths {sorted(depths)}")
        self.depth: int = depths.pop()
        self.eos_token_id = eos_token_id
        self.item_ids = list(item_ids)
        self._first = {item: int(seq[0]) for item, seq in zip(self.item_ids, token_seqs, strict=True)}
        children: list[dict[int, int]] = [{}]
        leaf_item: dict[int, int] = {}
        for index, seq in enumerate(token_seqs):
            node = 0
            for token in seq:
                token = int(token)
                nxt = children[node].get(token)
                if nxt is None:
                    nxt = children[node][token] = len(children)
                    children.append({})
                node = nxt
            if node in leaf_item:
                raise ValueError(f"items {self.item_ids[leaf_item[node]]!r} and {item_ids[index]!r} share one SID")
            leaf_item[node] = index
        self.num_nodes = len(children)
        max_token = max(max(int(t) for t in seq) for seq in token_seqs)
        if eos_token_id is not None:
            max_token = max(max_token, eos_token_id)
        self._stride = max_token + 1
        self._children = children
        self._leaf_item = leaf_item
        # vectorised edges: sorted keys node*stride+token -> child
        keys, kids = [], []
        for node, edges in enumerate(children):
            for token, child in edges.items():
                keys.append(node * self._stride + token)
                kids.append(child)
        order = np.argsort(keys)
        self._keys = torch.tensor(np.asarray(keys, dtype=np.int64)[order])
        self._kids = torch.tensor(np.asarray(kids, dtype=np.int64)[order])
        # CSR of allowed tokens per node; index `num_nodes` is the "outside the trie" node
        eos = [] if eos_token_id is None else [eos_token_id]
        allowed = [sorted(edges) if edges else eos for edges in children] + [eos]
        self._ptr = torch.tensor(np.cumsum([0] + [len(a) for a in allowed]), dtype=torch.int64)
        self._tok = torch.tensor([t for a in allowed for t in a], dtype=torch.int64)

    @classmethod
    def from_sid_map(cls, sid_map: pd.DataFrame, tokenizer: PreTrainedTokenizerBase) -> SidTrie:
        """Trie over a `sid_map.parquet` table (`item_id`, `sid`), with the tokenizer's ids and EOS."""
        from genrec.model.tokenizer import sid_token_ids

        missing = {"item_id", "sid"} - set(sid_map.columns)
        if missing:
            raise ValueError(f"sid map lacks columns {sorted(missing)}")
        seqs = [sid_token_ids(tokenizer, sid) for sid in sid_map["sid"]]
        return cls([str(i) for i in sid_map["item_id"]], seqs, eos_token_id=tokenizer.eos_token_id)

    def __len__(self) -> int:
        return len(self.item_ids)

    def _walk(self, prefix: Sequence[int]) -> int | None:
        node = 0
        for token in prefix:
            node = self._children[node].get(int(token))
            if node is None:
                return None
        return node

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Token ids that may follow `prefix` (root = empty prefix); [EOS] after a complete SID; [] if invalid."""
        node = self._walk(prefix)
        if node is None:
            return []
        return self._tok[self._ptr[node]:self._ptr[node + 1]].tolist()

    def item_for(self, tokens: Sequence[int]) -> str | None:
        """The item whose SID is exactly `tokens`, or None."""
        node = self._walk(tokens)
        index = self._leaf_item.get(node) if node is not None else None
        return None if index is None else self.item_ids[index]

    def first_token(self, item: str) -> int:
        """The first SID token (first-level code) of a catalogue item."""
        try:
            return self._first[item]
        except KeyError:
            raise KeyError(f"item {item!r} is not in the SID trie") from None

    def nodes(self, input_ids: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Trie node of each row after reading `input_ids[row, start[row]:]`; `num_nodes` = outside the trie."""
        batch, length = input_ids.shape
        outside = self.num_nodes
        node = torch.zeros(batch, dtype=torch.int64)
        ids = input_ids.to(torch.int64).cpu()
        for pos in range(int(start.min()) if batch else length, length):
            active = (start <= pos) & (node != outside)
            key = node * self._stride + ids[:, pos]
            idx = torch.searchsorted(self._keys, key).clamp(max=len(self._keys) - 1)
            found = (self._keys[idx] == key) & (ids[:, pos] < self._stride)
            node = torch.where(active, torch.where(found, self._kids[idx], outside), node)
        return node

    def allowed_mask(self, input_ids: torch.Tensor, start: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """Bool [batch, vocab]: True where a token may come next for each row (SID begins at `start[row]`)."""
        node = self.nodes(input_ids, start)
        counts = self._ptr[node + 1] - self._ptr[node]
        rows = torch.repeat_interleave(torch.arange(len(node)), counts)
        first = torch.repeat_interleave(self._ptr[node], counts)
        offset = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        mask = torch.zeros(len(node), vocab_size, dtype=torch.bool)
        mask[rows, self._tok[first + offset]] = True
        return mask


class SidTrieLogitsProcessor(LogitsProcessor):
    """Adds -inf to every token the trie forbids. Scores are the model's log-softmax (not renormalised
    over the allowed set), so a beam's score stays the sum of its tokens' raw log-probs.

    The SID starts at `prompt_len` (left-padded batches: the padded prompt length), or, when
    `prompt_len` is None, right after each row's last `ans_token_id` (prompts end with `<ans>`).
    """

    def __init__(self, trie: SidTrie, prompt_len: int | None = None, ans_token_id: int | None = None):
        if prompt_len is None and ans_token_id is None:
            raise ValueError("give prompt_len or ans_token_id so the processor knows where the SID starts")
        if trie.eos_token_id is None:
            raise ValueError("the trie needs eos_token_id: a finished SID may only be followed by EOS")
        self.trie = trie
        self.prompt_len = prompt_len
        self.ans_token_id = ans_token_id

    def _start(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.prompt_len is not None:
            return torch.full((input_ids.shape[0],), self.prompt_len, dtype=torch.int64)
        is_ans = (input_ids == self.ans_token_id).to(torch.int64)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        last = (is_ans * (positions + 1)).max(dim=1).values  # 1 + last <ans> position, 0 if none
        return last.cpu()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = self.trie.allowed_mask(input_ids, self._start(input_ids), scores.shape[-1]).to(scores.device)
        return scores.masked_fill(~mask, float("-inf"))
