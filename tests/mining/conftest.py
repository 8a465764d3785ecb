"""Fixtures of the mining tests (builders live in mining_fixtures.py)."""

from mining_fixtures import mining_run, server, stand_in

__all__ = ["mining_run", "server", "stand_in"]
