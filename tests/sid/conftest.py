"""Fixtures of the sid tests (defined in sid_fixtures.py)."""

from sid_fixtures import sid_run  # noqa: F401
