"""SFT examples as HF datasets: pre-tokenized `input_ids` + `completion_mask` (trl turns the mask into labels).

Tasks (weights in `SFTTasks`):
- `history`: a training prefix's SIDs (+ titles / interests if the model uses them) -> the next item's SID;
- `alignment` (llm): item title -> SID and SID -> title, for every item;
- `interests` (llm): the user's curated interests -> each of the user's training items' SIDs.
Training uses train rows (and training items) only; the validation rows form the evaluation set.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from genrec.model.config import ModelInfo
from genrec.model.prompt import interests_prompt_ids, sid_to_title_prompt_ids, title_to_sid_prompt_ids
from genrec.model.sources import HistoryPrompts, lookup_sids
from genrec.model.tokenizer import sid_token_ids

Example = tuple[list[int], list[int]]  # (prompt ids, completion ids)


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

    def sid_completion(self, item: str) -> list[int]:
        return sid_token_ids(self.tokenizer, lookup_sids(self.src.sid_of, [item])[0]) + [self.eos]

    def history(self, row: pd.Series) -> Example:
        return self.prompts.for_user(row["user_id"], list(row["history"])), self.sid_completion(row["target"])

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


def to_dataset(examples: list[Example]) -> Dataset:
    """Pre-tokenized dataset: loss only on the completion (after `<ans>`)."""
    return Dataset.from_dict({
        "input_ids": [p + c for p, c in examples],
        "completion_mask": [[0] * len(p) + [1] * len(c) for p, c in examples],
    })


def train_examples(builder: ExampleBuilder, weights: dict[str, float], seed: int,
                   max_examples: int | None = None) -> tuple[list[Example], dict[str, int]]:
    """The training mix (shuffled) and the number of examples per task."""
    rng = random.Random(seed)
    seq = builder.src.sequences
    train = seq[seq["split"] == "train"]
    tasks: dict[str, list[Callable[[], Example]]] = {
        "history": [lambda r=r: builder.history(r) for _, r in train.iterrows()]}
    if weights.get("alignment", 0) > 0:
        items = sorted(i for i in builder.src.sid_of if builder.src.titles.get(i))
        tasks["alignment"] = ([lambda i=i: builder.title_to_sid(i) for i in items]
                              + [lambda i=i: builder.sid_to_title(i) for i in items])
    if weights.get("interests", 0) > 0:
        valid = seq[seq["split"] == "valid"]  # its history = the user's training items
        pairs = [(u, i) for u, h in zip(valid["user_id"], valid["history"], strict=True)
                 if builder.src.interests.get(u) for i in h]
        tasks["interests"] = [lambda u=u, i=i: builder.interests_to_item(u, i) for u, i in pairs]
    chosen = {name: weighted(fns, weights.get(name, 0.0), rng) for name, fns in tasks.items()}
    mix = [fn for fns in chosen.values() for fn in fns]
    rng.shuffle(mix)
    if max_examples is not None:
        mix = mix[:max_examples]
    return [fn() for fn in mix], {name: len(fns) for name, fns in chosen.items()}


def valid_sample(sequences: pd.DataFrame, max_users: int | None, seed: int) -> pd.DataFrame:
    """Validation rows of a seeded sample of `max_users` users (all of them when None)."""
    valid = sequences[sequences["split"] == "valid"]
    if max_users is not None and len(valid) > max_users:
        valid = valid.sample(n=max_users, random_state=seed)
    return valid


def history_examples(builder: ExampleBuilder, rows: pd.DataFrame) -> list[Example]:
    """History -> next SID for these rows."""
    return [builder.history(r) for _, r in rows.iterrows()]
