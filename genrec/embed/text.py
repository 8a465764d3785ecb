"""Item text for the encoder: one template over the item table's text fields."""

from __future__ import annotations

import re

import pandas as pd

FIELDS = ("title", "brand", "categories", "description")


def item_texts(items: pd.DataFrame, template: str, max_chars: int) -> list[str]:
    """Fill `template` per item; empty fields leave no dangling labels ("Brand: ." is dropped)."""
    try:
        template.format(**{f: "" for f in FIELDS})
    except (KeyError, IndexError) as exc:
        raise ValueError(f"embed.template: unknown field {exc}; allowed: {', '.join(FIELDS)}") from None
    texts = []
    for row in items[list(FIELDS)].fillna("").itertuples(index=False):
        values = {f: str(v).strip() for f, v in zip(FIELDS, row, strict=True)}
        text = template.format(**values)
        text = re.sub(r"\b\w+: \.\s*", "", text)  # a labelled field that came out empty
        text = re.sub(r"\s+", " ", text).strip(" .")
        texts.append(text[:max_chars] or "unknown item")
    return texts
