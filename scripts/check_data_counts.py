"""Check the datasets under the data root (default ../shared/data) against the counts their SOURCE.md states.
The data is not in the repo (only scientific is embedded), so this is a script, not a test.

    python scripts/check_data_counts.py
"""

from __future__ import annotations

import sys

from genrec.data import DataConfig, prepare

EXPECTED = {  # name: (users, items, interactions); MiniOneRec sets are evaluation-only: (valid rows, test rows, items)
    "scientific": (8317, 4344, 58492), "beauty": (22363, 12101, 198502), "sports": (35598, 18357, 296337),
    "toys": (19412, 11924, 167597), "instruments": (24772, 9922, 206153),
}
EVAL_ONLY = {"industrial_minionerec": (4532, 4533, 3686)}


def main() -> int:
    bad = 0
    for name, expected in EXPECTED.items():
        items, _, counts = prepare(DataConfig(name=name))
        got = (counts["users"], counts["items"], counts["interactions"])
        unescaped = not items["title"].str.contains("&amp;").any()
        ok = got == expected and unescaped
        bad += not ok
        print(f"{name:24s} users/items/interactions {got} expected {expected} {'ok' if ok else 'MISMATCH'}")
    for name, expected in EVAL_ONLY.items():
        _, _, counts = prepare(DataConfig(name=name))
        got = (counts["valid_rows"], counts["test_rows"], counts["items"])
        ok = got == expected and counts["train_rows"] == 0
        bad += not ok
        print(f"{name:24s} valid/test rows, items {got} expected {expected} {'ok' if ok else 'MISMATCH'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
