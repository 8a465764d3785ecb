"""The `recs.jsonl` evaluation format: one line per user, `{"user": id, "items": [id, ...]}` best first.

Any system's output in this format is scored identically by `genrec eval`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from genrec.artifacts import atomic_output
from genrec.data.formats import iter_json_objects

MIN_ITEMS = 10


class RecsFormatError(ValueError):
    """A recs.jsonl that is malformed or does not match the dataset."""


def write_recs(path: Path, recs: Iterable[tuple[str, Sequence[str]]], extra: Mapping[str, dict] | None = None) -> int:
    """Write recommendations atomically; `extra[user]` adds fields (e.g. scores) to that user's line."""
    count = 0
    with atomic_output(Path(path)) as tmp, tmp.open("w") as fh:
        for user, items in recs:
            line = {"user": str(user), "items": [str(i) for i in items]}
            if extra and user in extra:
                line.update(extra[user])
            fh.write(json.dumps(line) + "\n")
            count += 1
    return count


def read_recs(path: Path, known_items: set[str] | None = None, min_items: int = MIN_ITEMS) -> dict[str, list[str]]:
    """Read and validate recs.jsonl, naming the file and line of the first problem."""
    path = Path(path)
    recs: dict[str, list[str]] = {}
    for lineno, obj in iter_json_objects(path, RecsFormatError):
        if "user" not in obj or not isinstance(obj.get("items"), list):
            raise RecsFormatError(f'{path}: line {lineno}: expected {{"user": ..., "items": [...]}}')
        user, items = str(obj["user"]), [str(i) for i in obj["items"]]
        if user in recs:
            raise RecsFormatError(f"{path}: line {lineno}: user {user!r} appears twice")
        if len(items) < min_items:
            raise RecsFormatError(f"{path}: line {lineno}: user {user!r} has {len(items)} items, need >= {min_items}")
        if known_items is not None:
            unknown = [i for i in items if i not in known_items]
            if unknown:
                raise RecsFormatError(f"{path}: line {lineno}: unknown item id {unknown[0]!r}")
        recs[user] = items
    return recs
