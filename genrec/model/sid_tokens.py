"""SID strings <-> level tokens: `<a_12><b_200><c_7>` is the token list ["<a_12>", "<b_200>", "<c_7>"].

Level l (0-based) uses the letter `LEVEL_LETTERS[l]`; an optional disambiguation level is just one more
letter. The vocabulary of a SID map is every `<x_i>` with i below the largest code seen at that level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

LEVEL_LETTERS = "abcdefgh"
_TOKEN = re.compile(r"<([a-h])_(\d+)>")


class SidFormatError(ValueError):
    """A SID string or code list that does not follow the `<a_i><b_j>...` format."""


def level_token(level: int, code: int) -> str:
    """The token of `code` at `level` (0 -> `<a_code>`)."""
    return f"<{LEVEL_LETTERS[level]}_{code}>"


def codes_to_sid(codes: Sequence[int]) -> str:
    """Concatenated level tokens of a code list."""
    return "".join(level_token(level, int(code)) for level, code in enumerate(codes))


def parse_sid(sid: str) -> list[str]:
    """Split a SID string into its level tokens, checking the letters run a, b, c, ... in order."""
    tokens = [m.group(0) for m in _TOKEN.finditer(sid)]
    if not tokens or "".join(tokens) != sid:
        raise SidFormatError(f"malformed SID {sid!r}: expected tokens like <a_12><b_200><c_7>")
    letters = "".join(t[1] for t in tokens)
    if letters != LEVEL_LETTERS[: len(tokens)]:
        raise SidFormatError(f"malformed SID {sid!r}: levels must run {LEVEL_LETTERS[:len(tokens)]!r}, got {letters!r}")
    return tokens


def sid_vocabulary(sids: Iterable[str]) -> list[str]:
    """Every level token needed by these SIDs: `<x_0>` .. `<x_max>` per level, level by level."""
    maxima: list[int] = []
    for sid in sids:
        for level, token in enumerate(parse_sid(sid)):
            code = int(token[3:-1])
            if level == len(maxima):
                maxima.append(code)
            else:
                maxima[level] = max(maxima[level], code)
    return [level_token(level, code) for level, top in enumerate(maxima) for code in range(top + 1)]
