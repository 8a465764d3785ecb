"""Collision resolution: every item gets a unique SID, deterministically.

`reassign` (LC-Rec / LETTER-style, greedy): within each group of items that share all L codes, the item
closest to its last-level code keeps it; the others move, in order of that distance, to the nearest
last-level code whose full SID is still free. `extra_level` (TIGER): append a code `j` = rank of the item
in its remaining collision group (0 for unique items) to *every* item, so all SIDs keep one length.
`reassign` is followed by `extra_level` only when some prefix has more items than codes.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def collision_rate(codes: np.ndarray) -> float:
    """Share of items whose code tuple is not unique: 1 - distinct tuples / items."""
    if len(codes) == 0:
        return 0.0
    return 1.0 - len(np.unique(codes, axis=0)) / len(codes)


def groups(codes: np.ndarray) -> dict[tuple[int, ...], list[int]]:
    """Item rows by code tuple."""
    out: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row, key in enumerate(map(tuple, codes.tolist())):
        out[key].append(row)
    return out


def reassign(codes: np.ndarray, last_dist: np.ndarray) -> np.ndarray:
    """Move colliding items to their nearest free last-level code (same prefix). Deterministic."""
    codes = codes.copy()
    taken = set(map(tuple, codes.tolist()))
    for key, rows in sorted(groups(codes).items()):
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda r: (float(last_dist[r, key[-1]]), r))
        for row in rows[1:]:
            for code in np.argsort(last_dist[row], kind="stable").tolist():
                candidate = (*key[:-1], code)
                if candidate not in taken:
                    taken.add(candidate)
                    codes[row, -1] = code
                    break
    return codes


def extra_level(codes: np.ndarray, last_dist: np.ndarray) -> np.ndarray:
    """Append the rank within each collision group (closest to its last code first); unique items get 0."""
    extra = np.zeros(len(codes), np.int64)
    for key, rows in groups(codes).items():
        for rank, row in enumerate(sorted(rows, key=lambda r: (float(last_dist[r, key[-1]]), r))):
            extra[row] = rank
    return np.concatenate([codes, extra[:, None]], axis=1)


def resolve(codes: np.ndarray, last_dist: np.ndarray, method: str) -> np.ndarray:
    """Unique codes for every item: [N, L] when that suffices, else [N, L + 1]."""
    if method == "reassign":
        codes = reassign(codes, last_dist)
    if collision_rate(codes) > 0:
        codes = extra_level(codes, last_dist)
    return codes
