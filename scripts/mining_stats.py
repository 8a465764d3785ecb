"""How far a mining run got and what its answers look like, read from its cache (`mine/mining.sqlite`):
finished / failed / waiting for a retry, parse success, speed from the per-answer generation times, and the
quality signs BENCHMARKS.md reports (distinct interests per answer, repeats, boilerplate openings, the length cap).

    python scripts/mining_stats.py runs/sci_users/mine/mining.sqlite --kind user \
        --out benchmarks/results/mining_users_scientific.json
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from genrec.artifacts import command_line, machine_description, write_json
from genrec.mining.schema import Interest

BOILERPLATE = ("the customer", "this customer", "the product", "bought by")
# the schema's interest length limit; a capped interest may lose a trailing space to the parser's strip()
CAP = next(m.max_length for m in Interest.model_fields["interest"].metadata if hasattr(m, "max_length"))


def raw_interests(raw: str) -> list[str]:
    """The interest strings as the model wrote them (before the parser's de-duplication); [] when not JSON."""
    try:
        return [str(i.get("interest", "")).strip() for i in json.loads(raw).get("interests", [])]
    except (json.JSONDecodeError, AttributeError):
        return []


def mining_stats(cache: Path, kind: str) -> dict:
    """Counts, rates and quality signs of one kind's answers in a mining cache."""
    if not cache.is_file():
        raise FileNotFoundError(f"no mining cache at {cache}")
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT status, attempts, raw, parsed, tokens, seconds FROM answers WHERE kind=?",
                          (kind,)).fetchall()
    ok = [r for r in rows if r[0] == "ok"]
    failed = sum(r[0] == "failed" for r in rows)
    seconds, tokens = sum(r[5] for r in rows), sum(r[4] for r in rows)
    interests = [i["interest"] for r in ok for i in json.loads(r[3])["interests"]]
    repeating = sum(len(set(raw)) < len(raw) for raw in (raw_interests(r[2]) for r in ok))
    return {
        "kind": kind, "answers": len(ok) + failed, "ok": len(ok), "failed": failed,
        "waiting_for_retry": sum(r[0] == "retry" for r in rows),
        "parse_success_rate": round(len(ok) / (len(ok) + failed), 4) if ok or failed else 0.0,
        "ok_on_first_attempt": sum(r[1] == 1 for r in ok),
        "llm_seconds": round(seconds, 1),
        "per_s": round(len(rows) / seconds, 3) if seconds else None,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "interests": len(interests),
        "distinct_interests_per_answer": round(len(interests) / len(ok), 2) if ok else 0.0,
        "answers_repeating_an_interest": repeating,
        "boilerplate_share": round(sum(i.lower().startswith(BOILERPLATE) for i in interests) / len(interests), 3)
        if interests else 0.0,
        "at_length_cap_share": round(sum(len(i) >= CAP - 1 for i in interests) / len(interests), 3) if interests else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache", type=Path, help="a run's mine/mining.sqlite")
    parser.add_argument("--kind", choices=["item", "user"], default="user")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers here (JSON)")
    args = parser.parse_args()
    stats = mining_stats(args.cache, args.kind)
    print(json.dumps(stats, indent=2))
    if args.out:
        write_json(args.out, {**stats, "cache": str(args.cache), "command": command_line(),
                              "machine": machine_description(),
                              "date": datetime.now(UTC).isoformat(timespec="seconds")})


if __name__ == "__main__":
    main()
