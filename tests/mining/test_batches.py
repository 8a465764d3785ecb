"""How backends cut requests into engine batches."""

from __future__ import annotations

from genrec.mining.backends.base import batches, token_batches


def test_batches_by_count() -> None:
    assert [list(b) for b in batches(5, 2)] == [[0, 1], [2, 3], [4]]


def test_token_batches_fit_the_budget_and_keep_order() -> None:
    lengths = [300, 300, 300, 5000, 10, 10, 10]
    got = list(token_batches(lengths, budget=700, size=2))
    assert got == [[0, 1], [2], [3], [4, 5], [6]]  # the 5000-token prompt goes alone
    assert all(sum(lengths[i] for i in b) <= 700 for b in got if len(b) > 1)
    assert list(token_batches([], 100, 4)) == []
