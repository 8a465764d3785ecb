"""Tokenizers that know the SID level tokens and the `<ans>` marker (the prompt's last token; the SID follows it).

`scratch`: a word-level tokenizer whose vocabulary is the specials plus the SID tokens (nothing else).
`llm`: the pretrained tokenizer with the SID tokens and `<ans>` added (and a pad token if it has none).
Both give one id per SID token, so a SID is always exactly `sid_levels` ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AddedToken, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from genrec.model.sid_tokens import SidFormatError, parse_sid

ANS = "<ans>"
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def item_token(item_id: str) -> str:
    """The input token of one item (scratch models with `item_tokens`)."""
    return f"<item:{item_id}>"


def scratch_tokenizer(sid_vocab: Sequence[str], item_ids: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over specials + SID tokens (+ one token per item id when given); text is split
    into `<...>` pieces."""
    bad = next((i for i in item_ids if not i or re.search(r"[\s<>]", i)), None)
    if bad is not None:
        raise ValueError(f"item id {bad!r} cannot be an item token (empty, or holds whitespace, '<' or '>')")
    vocab = {token: i for i, token in enumerate([PAD, BOS, EOS, UNK, ANS, *sid_vocab, *map(item_token, item_ids)])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"<[^<>]*>"), behavior="isolated")])
    core.decoder = decoders.Fuse()
    core.add_special_tokens([PAD, BOS, EOS, UNK, ANS])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, padding_side="left")


def add_sid_tokens(tokenizer: PreTrainedTokenizerBase, sid_vocab: Sequence[str]) -> list[int]:
    """Add the SID tokens, `<ans>` (and `<pad>` if missing) to a pretrained tokenizer; return the new ids."""
    before = len(tokenizer)
    tokenizer.add_tokens([AddedToken(t, single_word=False, normalized=False) for t in sid_vocab])
    tokenizer.add_tokens([AddedToken(ANS, normalized=False, special=True)], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD})
    tokenizer.padding_side = "left"
    return list(range(before, len(tokenizer)))


def sid_token_ids(tokenizer: PreTrainedTokenizerBase, sid: str) -> list[int]:
    """The ids of a SID's level tokens (one per level); unknown tokens are an error naming the SID."""
    tokens = parse_sid(sid)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    unk = tokenizer.unk_token_id
    if any(i is None or (unk is not None and i == unk) for i in ids):
        raise SidFormatError(f"SID {sid!r} has tokens unknown to this tokenizer (was it built from another sid map?)")
    return list(ids)


def item_token_id(tokenizer: PreTrainedTokenizerBase, item_id: str) -> int:
    """Id of an item's input token; an item the checkpoint has no token for is an error naming it."""
    token_id = tokenizer.convert_tokens_to_ids(item_token(item_id))
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise KeyError(f"item {item_id!r} has no item token in this checkpoint (it was not in the catalogue at training)")
    return token_id


def ans_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Id of the `<ans>` marker that ends every prompt."""
    token_id = tokenizer.convert_tokens_to_ids(ANS)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer has no {ANS} token: not a genrec tokenizer")
    return token_id
