"""Tiny themed run folders for the reward tests: users who stay within one hobby, and interests that do or do
not fit it (imported by name: tests/ has no packages)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from genrec.data import DataConfig
from genrec.data import run as prepare_data
from genrec.reward import LabelConfig

# The tiny catalogue has four themes of six items each, so a quarter of random items share an interest's
# theme: the null quantile must sit below 0.75 for any support to count.
TINY_CONFIG = LabelConfig(null_quantile=0.7, head=dict(epochs=10), batch_size=64, threads=1)

THEMES = {
    "aquarium": (["Aquarium canister filter", "Tropical fish tank heater", "Aquarium gravel vacuum cleaner",
                  "Fish tank LED light", "Aquarium water test kit", "Coral reef salt mix"],
                 ["keeping tropical fish healthy", "maintaining a clean aquarium", "building a reef tank"]),
    "electronics": (["Soldering iron station", "Digital multimeter", "Breadboard jumper wire kit",
                     "Desoldering pump", "Oscilloscope probe set", "Arduino starter kit"],
                    ["repairing circuit boards", "hobby electronics projects", "learning to solder"]),
    "lab": (["Borosilicate glass beaker set", "Laboratory pipette tips", "Nitrile lab gloves",
             "Magnetic stirrer hot plate", "Petri dishes sterile", "Graduated cylinder"],
            ["running chemistry experiments", "working safely in a laboratory", "microbiology cultures"]),
    "woodwork": (["Wood chisel set", "Cordless drill driver", "Wood glue bottle", "Bar clamps pair",
                  "Orbital sander", "Carpenter square ruler"],
                 ["building wooden furniture", "home carpentry projects", "restoring old timber"]),
}
ITEMS = [(theme, title) for theme, (titles, _) in THEMES.items() for title in titles]


def write_dataset(folder: Path, test_item_text: str | None = None, n_users: int = 48, seed: int = 0) -> dict[str, str]:
    """An LC-Rec folder: each user buys 7 items of one theme; user 0's last (test) item is an extra item
    bought by no one else, titled `test_item_text`. Returns user -> theme."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    sequences, theme_of = {}, {}
    for u in range(n_users):
        theme = list(THEMES)[u % len(THEMES)]
        ids = [i for i, (t, _) in enumerate(ITEMS) if t == theme]
        sequences[str(u)] = rng.sample(ids, 6) + [rng.choice(ids)]
        theme_of[str(u)] = theme
    test_item = len(ITEMS)
    sequences["0"][-1] = test_item
    (folder / "Tiny.inter.json").write_text(json.dumps(sequences))
    meta = {str(i): {"title": title, "description": f"{title} for {theme} use", "brand": "Acme",
                     "categories": f"Industrial & Scientific,{theme.title()}"}
            for i, (theme, title) in enumerate(ITEMS)}
    title = test_item_text or "Aquarium protein skimmer"
    meta[str(test_item)] = {"title": title, "description": title, "brand": "Acme", "categories": "Industrial & Scientific"}
    (folder / "Tiny.item.json").write_text(json.dumps(meta))
    return theme_of


def interest_rows(theme_of: dict[str, str]) -> pd.DataFrame:
    """Every user gets two interests of its theme and one of another theme; every item two of its theme."""
    rows = []
    themes = list(THEMES)

    def row(kind: str, entity: str, interest: str) -> dict:
        return {"kind": kind, "entity_id": entity, "interest": interest, "evidence": "", "reasoning": "",
                "models": ["test:synthetic"], "agreement": 1, "prompt_hash": "p"}

    for u, theme in theme_of.items():
        own = THEMES[theme][1]
        other = THEMES[themes[(themes.index(theme) + 1) % len(themes)]][1]
        k = int(u)
        rows += [row("user", u, own[k % 3]), row("user", u, own[(k + 1) % 3]), row("user", u, other[k % 3])]
    for i, (theme, _) in enumerate(ITEMS):
        rows += [row("item", str(i), x) for x in THEMES[theme][1][:2]]
    rows.append(row("item", str(len(ITEMS)), "reef aquarium water quality"))
    return pd.DataFrame(rows)


def make_themed_run(root: Path, test_item_text: str | None = None) -> Path:
    """A run folder with data/ prepared and mine/interests.parquet written.

    User 0's test target is an extra item that no one has in training; `test_item_text` sets its title.
    """
    theme_of = write_dataset(root / "dataset", test_item_text)
    run_dir = root / "run"
    prepare_data(DataConfig(path=root / "dataset"), run_dir)
    (run_dir / "mine").mkdir()
    interest_rows(theme_of).to_parquet(run_dir / "mine" / "interests.parquet", index=False)
    return run_dir
