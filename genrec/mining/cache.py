"""SQLite cache of every mining request: a killed batch resumes, and nothing is asked twice.

Keyed by (backend, model, prompt hash, input hash). Each attempt's answer is committed as it arrives
(WAL mode), with its raw text, the parsed result or the parse error. A key is finished when it parsed
(`ok`) or used up its attempts (`failed`); otherwise (`retry`) the next run asks again with the next attempt.

Answers travel between machines as gzipped JSON lines (`export` / `import_rows`): mine on a GPU box, carry
the file, and the run there asks nothing already answered.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from genrec.mining.prompts import Request

COLUMNS = ("backend", "model", "prompt_hash", "input_hash", "kind", "entity_id", "template", "status", "attempts",
           "raw", "parsed", "error", "tokens", "seconds", "updated")
FINISHED = ("ok", "failed")
INSERT = f"INSERT OR REPLACE INTO answers VALUES ({','.join('?' * len(COLUMNS))})"
BY_KEY = "WHERE backend=? AND model=? AND prompt_hash=? AND input_hash=?"

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
            f"SELECT kind, entity_id, status, attempts, raw, parsed, error, tokens, seconds FROM answers {BY_KEY}",
            (backend, model, request.prompt_hash, request.input_hash)).fetchone()
        if row is None:
            return None
        return CachedAnswer(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else None, row[6], row[7],
                            row[8])

    def put(self, backend: str, model: str, request: Request, status: str, attempts: int, raw: str,
            parsed: dict | None, error: str | None, tokens: int, seconds: float) -> None:
        """Record one attempt's outcome and commit at once."""
        self.conn.execute(
            INSERT,
            (backend, model, request.prompt_hash, request.input_hash, request.kind, request.entity_id,
             request.template, status, attempts, raw, json.dumps(parsed) if parsed is not None else None,
             error, tokens, seconds, time.time()))
        self.conn.commit()

    def export(self, path: Path, kinds: list[str] | None = None) -> int:
        """Write every answer (of the given kinds, all when None) to gzipped JSON lines; returns the row count."""
        where, args = ("", ()) if not kinds else (f" WHERE kind IN ({','.join('?' * len(kinds))})", tuple(kinds))
        rows = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM answers{where} ORDER BY kind, entity_id", args)
        count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False) + "\n")
                count += 1
        return count

    def import_rows(self, path: Path) -> tuple[int, int]:
        """Add the answers of an exported file; returns (taken, kept_local).

        A row is taken when its key is new here, or when the local row still waits for a retry and the file's is
        finished or further along; a finished local answer is never overwritten.
        """
        if not path.is_file():
            raise FileNotFoundError(f"no exported mining cache at {path}")
        taken = kept = 0
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    row = json.loads(line)
                    values = tuple(row[c] for c in COLUMNS)
                    if row["status"] not in (*FINISHED, "retry"):
                        raise ValueError(f"unknown status {row['status']!r}")
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{number}: not an exported mining-cache row ({exc})") from exc
                local = self.conn.execute(
                    f"SELECT status, attempts FROM answers {BY_KEY}", values[:4]).fetchone()
                newer = local is None or (local[0] == "retry" and (row["status"] in FINISHED or row["attempts"] > local[1]))
                if newer:
                    self.conn.execute(INSERT, values)
                    taken += 1
                else:
                    kept += 1
        self.conn.commit()
        return taken, kept
