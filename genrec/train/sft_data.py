"""SFT examples as HF datasets: pre-tokenized `input_ids` + `completion_mask` (trl turns the mask into labels).

Tasks (weights in `SFTTasks`):
- `history`: a training prefix's SIDs (+ titles / interests if the model uses them) -> the next item's SID; or
  (`history_examples="sequences"`, scratch) one window of a user's training items with the loss on every item
  after the first, as SASRec trains: the same targets as all prefixes at a fraction of the tokens;
- `alignment` (llm): item title -> SID and SID -> title, for every item;
- `interests` (llm): the user's curated interests -> each of the user's training items' SIDs.
Training uses train rows (and training items) only; the validation rows form the evaluation set.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from genrec.model.config import ModelInfo
from genrec.model.prompt import interests_prompt_ids, sid_to_title_prompt_ids, title_to_sid_prompt_ids
from genrec.model.sources import HistoryPrompts, lookup_sids
from genrec.model.tokenizer import sid_token_ids

Example = tuple[list[int], list[int]]  # (prompt ids, completion ids)
TrainRow = tuple[list[int], list[int]]  # (input ids, completion mask: 1 where the token is a loss target)


@dataclass(frozen=True)
class SftSources:
    """Everything the examples are built from (already restricted to what training may see)."""

    sequences: pd.DataFrame
    sid_of: dict[str, str]
    titles: dict[str, str]
    interests: dict[str, list[str]]  # user -> curated interests (label 1, best first); empty when unused


class ExampleBuilder:
    """Turns rows into (prompt, completion) token ids for one tokenizer / prompt format."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, info: ModelInfo, sources: SftSources):
        self.tokenizer, self.info, self.src = tokenizer, info, sources
        self.eos = tokenizer.eos_token_id
        self.prompts = HistoryPrompts(tokenizer, info, sources.sid_of, sources.titles, sources.interests)
        self.sid_token_set = {t for sid in set(sources.sid_of.values()) for t in sid_token_ids(tokenizer, sid)}

    def sid_completion(self, item: str) -> list[int]:
        return sid_token_ids(self.tokenizer, lookup_sids(self.src.sid_of, [item])[0]) + [self.eos]

    def history(self, row: pd.Series) -> Example:
        return self.prompts.for_user(row["user_id"], list(row["history"])), self.sid_completion(row["target"])

    def user_windows(self, user: str, items: list[str], first_target: int) -> list[TrainRow]:
        """Rows predicting each of `items[first_target:]` once: walking back from the last item, a window of the
        `max_history` items before a target, whose SID tokens are loss targets too (all but the window's first
        item, and items before `first_target`), then the window's first item is the next target."""
        rows, end = [], len(items) - 1
        while end >= first_target:
            start = max(0, end - self.info.max_history)
            prompt, completion = self.prompts.for_user(user, items[start:end]), self.sid_completion(items[end])
            skip = max(start + 1, first_target) - start  # leading window items that are context only
            mask, seen = [], 0
            for token in prompt:
                is_sid = token in self.sid_token_set
                mask.append(int(is_sid and seen // self.info.sid_levels >= skip))
                seen += is_sid
            rows.append((prompt + completion, mask + [1] * len(completion)))
            end = start
        return rows

    def title_to_sid(self, item: str) -> Example:
        return title_to_sid_prompt_ids(self.tokenizer, self.src.titles[item]), self.sid_completion(item)

    def sid_to_title(self, item: str) -> Example:
        title_ids = self.tokenizer(self.src.titles[item], add_special_tokens=False)["input_ids"]
        return sid_to_title_prompt_ids(self.tokenizer, self.src.sid_of[item]), title_ids + [self.eos]

    def interests_to_item(self, user: str, item: str) -> Example:
        return interests_prompt_ids(self.tokenizer, self.src.interests[user]), self.sid_completion(item)


def weighted(examples: list[Callable[[], Example]], weight: float, rng: random.Random) -> list[Callable[[], Example]]:
    """`weight` x the examples: whole copies plus a random sample for the fractional part."""
    whole, frac = int(weight), weight - int(weight)
    return examples * whole + rng.sample(examples, round(frac * len(examples)))


def as_row(example: Example) -> TrainRow:
    """A prompt/completion example with the loss on its completion only."""
    prompt, completion = example
    return prompt + completion, [0] * len(prompt) + [1] * len(completion)


def to_dataset(rows: list[TrainRow]) -> Dataset:
    """Pre-tokenized dataset; trl computes the loss where `completion_mask` is 1."""
    return Dataset.from_dict({"input_ids": [ids for ids, _ in rows], "completion_mask": [mask for _, mask in rows]})


def training_sequences(train: pd.DataFrame) -> list[tuple[str, list[str], int]]:
    """(user, training items in order, index of the first item that is a target) from the users' train rows
    (a user's rows are consecutive prefixes; anything else is an error)."""
    users = []
    for user, rows in train.groupby("user_id", sort=False):
        items = list(rows["history"].iloc[0])
        first_target = len(items)
        for history, target in zip(rows["history"], rows["target"], strict=True):
            if len(history) == 0 or history[-1] != items[-1]:
                raise ValueError(f"user {user!r}: train rows are not consecutive prefixes of one sequence")
            items.append(target)
        users.append((str(user), [str(i) for i in items], first_target))
    return users


def train_examples(builder: ExampleBuilder, weights: dict[str, float], seed: int, max_examples: int | None = None,
                   history_rows: Literal["prefixes", "sequences"] = "prefixes") -> tuple[list[TrainRow], dict[str, int]]:
    """The training mix (shuffled) and the number of examples per task."""
    rng = random.Random(seed)
    seq = builder.src.sequences
    train = seq[seq["split"] == "train"]
    tasks: dict[str, list[Callable[[], list[TrainRow]]]] = {"history": (
        [lambda r=r: [as_row(builder.history(r))] for _, r in train.iterrows()] if history_rows == "prefixes"
        else [lambda u=u: builder.user_windows(*u) for u in training_sequences(train)])}
    if weights.get("alignment", 0) > 0:
        items = sorted(i for i in builder.src.sid_of if builder.src.titles.get(i))
        tasks["alignment"] = ([lambda i=i: [as_row(builder.title_to_sid(i))] for i in items]
                              + [lambda i=i: [as_row(builder.sid_to_title(i))] for i in items])
    if weights.get("interests", 0) > 0:
        valid = seq[seq["split"] == "valid"]  # its history = the user's training items
        pairs = [(u, i) for u, h in zip(valid["user_id"], valid["history"], strict=True)
                 if builder.src.interests.get(u) for i in h]
        tasks["interests"] = [lambda u=u, i=i: [as_row(builder.interests_to_item(u, i))] for u, i in pairs]
    chosen = {name: weighted(fns, weights.get(name, 0.0), rng) for name, fns in tasks.items()}
    mix = [fn for fns in chosen.values() for fn in fns]
    rng.shuffle(mix)
    if max_examples is not None:
        mix = mix[:max_examples]
    return [row for fn in mix for row in fn()], {name: len(fns) for name, fns in chosen.items()}


def valid_sample(sequences: pd.DataFrame, max_users: int | None, seed: int) -> pd.DataFrame:
    """Validation rows of a seeded sample of `max_users` users (all of them when None)."""
    valid = sequences[sequences["split"] == "valid"]
    if max_users is not None and len(valid) > max_users:
        valid = valid.sample(n=max_users, random_state=seed)
    return valid


def history_examples(builder: ExampleBuilder, rows: pd.DataFrame) -> list[Example]:
    """History -> next SID for these rows."""
    return [builder.history(r) for _, r in rows.iterrows()]
