"""SQLite cache of every mining request: a killed batch resumes, and nothing is asked twice.

Keyed by (backend, model, prompt hash, input hash). Each attempt's answer is committed as it arrives
(WAL mode), with its raw text, the parsed result or the parse error. A key is finished when it parsed
(`ok`) or used up its attempts (`failed`); otherwise (`retry`) the next run asks again with the next attempt.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from genrec.mining.prompts import Request

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    backend TEXT NOT NULL, model TEXT NOT NULL, prompt_hash TEXT NOT NULL, input_hash TEXT NOT NULL,
    kind TEXT NOT NULL, entity_id TEXT NOT NULL, template TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'retry', 'failed')),
    attempts INTEGER NOT NULL, raw TEXT NOT NULL, parsed TEXT, error TEXT,
    tokens INTEGER NOT NULL, seconds REAL NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (backend, model, prompt_hash, input_hash)
)
"""


@dataclass(frozen=True)
class CachedAnswer:
    """A cache row as the stage uses it."""

    kind: str
    entity_id: str
    status: str
    attempts: int
    raw: str
    parsed: dict | None
    error: str | None
    tokens: int
    seconds: float  # the attempt's generation time (an earlier run's, when the answer came from the cache)


class MiningCache:
    """One SQLite file shared by every backend of a run."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(SCHEMA)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def get(self, backend: str, model: str, request: Request) -> CachedAnswer | None:
        row = self.conn.execute(
            "SELECT kind, entity_id, status, attempts, raw, parsed, error, tokens, seconds FROM answers "
            "WHERE backend=? AND model=? AND prompt_hash=? AND input_hash=?",
            (backend, model, request.prompt_hash, request.input_hash)).fetchone()
        if row is None:
            return None
        return CachedAnswer(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else None, row[6], row[7],
                            row[8])

    def put(self, backend: str, model: str, request: Request, status: str, attempts: int, raw: str,
            parsed: dict | None, error: str | None, tokens: int, seconds: float) -> None:
        """Record one attempt's outcome and commit at once."""
        self.conn.execute(
            "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (backend, model, request.prompt_hash, request.input_hash, request.kind, request.entity_id,
             request.template, status, attempts, raw, json.dumps(parsed) if parsed is not None else None,
             error, tokens, seconds, time.time()))
        self.conn.commit()
