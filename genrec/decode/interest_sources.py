"""Where interest-conditioned decoding gets its interests from: the run's files turned into a `select`.

`codes`: the decoder's own top first-level codes, named by their items' most common category.
`mined`: the users' curated interests (`label/interests_labelled.parquet`, label 1), mapped to codes through
the item text embeddings of `embed/item_emb.safetensors` (a code's vector = mean of its items' vectors) and
the same sentence encoder for the interest texts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genrec.artifacts import RunPaths
from genrec.decode.interest import CodeSpace, MinedInterestCodes, Select, code_labels, top_codes

SelectFor = Callable[[Sequence[str], int], Select]  # (the users of a batch in prompt order, k) -> their `select`


def first_codes(sid_map: pd.DataFrame, tokenizer) -> dict[str, int]:
    """item id -> token id of its SID's first level."""
    from genrec.model.tokenizer import sid_token_ids

    return {str(i): sid_token_ids(tokenizer, sid)[0] for i, sid in zip(sid_map["item_id"], sid_map["sid"], strict=True)}


def source_inputs(source: str, run_dir: Path) -> list[Path]:
    """Files a source reads (for the stage's input hashes)."""
    paths = RunPaths(Path(run_dir))
    return [paths.interests_labelled, paths.item_emb] if source == "mined" else []


def item_text_vectors(path: Path, item_ids: Sequence[str]) -> tuple[np.ndarray, str | None]:
    """The `text` rows of `item_emb.safetensors` for these items, in this order, and the encoder folder that
    made them (None: the default all-MiniLM-L6-v2)."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"interest_source=mined needs {path} (run `genrec embed`)")
    with safe_open(str(path), framework="numpy") as f:
        order = {item: row for row, item in enumerate(json.loads(f.metadata()["item_ids"]))}
        text = f.get_tensor("text")
        model = f.metadata().get("model", "")
    missing = [i for i in item_ids if i not in order]
    if missing:
        raise KeyError(f"{path}: no embedding for item {missing[0]!r} ({len(missing)} missing)")
    return text[[order[i] for i in item_ids]], (model if Path(model).is_dir() else None)


def interest_selector(source: str, m: int, num_beams: int, run_dir: Path, sid_map: pd.DataFrame, tokenizer,
                      users: Sequence[str], threads: int = 1) -> tuple[SelectFor, dict[str, float]]:
    """The `select` factory of a source over the catalogue in `sid_map` (m interests and num_beams beams a
    user; the list length k comes with each batch), and counts to report."""
    from genrec.data import load_items

    items = load_items(run_dir)
    first = first_codes(sid_map, tokenizer)
    labels = code_labels(first, dict(zip(items["item_id"].astype(str), items["categories"].fillna(""), strict=True)))
    sizes = dict(Counter(first.values()))

    def space(k: int) -> CodeSpace:
        return CodeSpace(labels, sizes, k, num_beams // 2)

    if source == "codes":
        return (lambda _users, k: top_codes(m, space(k))), {"codes": len(labels)}
    if source != "mined":
        raise ValueError(f"unknown interest_source {source!r} (codes or mined)")
    from genrec.embed.encode import encode, load_encoder
    from genrec.model.sources import user_interests

    curated = user_interests(RunPaths(Path(run_dir)).interests_labelled, limit=m)
    wanted = set(users)
    curated = {u: texts for u, texts in curated.items() if u in wanted}
    item_ids = list(first)
    vectors, encoder = item_text_vectors(RunPaths(Path(run_dir)).item_emb, item_ids)
    codes = sorted(set(first.values()))
    row = {c: n for n, c in enumerate(codes)}
    centroids = np.zeros((len(codes), vectors.shape[1]), np.float32)
    np.add.at(centroids, [row[first[i]] for i in item_ids], vectors)
    texts = sorted({t for ts in curated.values() for t in ts})
    encoded = encode(load_encoder(encoder, 128, threads), texts, 64, "interest texts") if texts else np.zeros((0, 1))
    vectors_of = dict(zip(texts, encoded, strict=True))
    counts = {"codes": len(labels), "users_with_interests": len(curated), "interest_texts": len(texts)}
    return (lambda batch, k: MinedInterestCodes(m, space(k), codes, centroids, vectors_of).for_users(
        [curated.get(u, []) for u in batch])), counts
