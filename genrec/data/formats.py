"""Readers for every dataset format genrec knows. Each returns raw, chronological per-user sequences
plus an item table; `split.py` turns them into the train/valid/test tables.

Errors name the file (and line where there is one): a malformed dataset never fails silently.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ITEM_COLUMNS = ["item_id", "title", "description", "brand", "categories", "image"]


class DataFormatError(ValueError):
    """A dataset file that is missing or does not match its format."""


@dataclass
class RawDataset:
    """Chronological item sequences per user (dataset's own ids, as strings) and item text."""

    sequences: dict[str, list[str]]
    items: pd.DataFrame
    # Pre-split samples for evaluation-only sets (MiniOneRec CSVs): rows of user_id/split/history/target.
    samples: list[dict] = field(default_factory=list)


def _open_text(path: Path, error: type[ValueError] = DataFormatError):
    if not path.is_file():
        raise error(f"{path}: file not found")
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _load_json(path: Path) -> object:
    with _open_text(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None


def iter_json_objects(path: Path, error: type[ValueError] = DataFormatError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file (gzip if `.gz`); a missing file, invalid JSON
    or a line that is not an object raises `error` naming the file and line (dataset readers, recs.jsonl)."""
    with _open_text(path, error) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}: line {lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise error(f"{path}: line {lineno}: expected a JSON object")
            yield lineno, obj


def _text(value: object) -> str:
    """Normalise a metadata field to plain text (lists joined, HTML entities decoded)."""
    if value is None:
        return ""
    if isinstance(value, list):
        flat = [" > ".join(map(str, v)) if isinstance(v, list) else str(v) for v in value]
        return " | ".join(x for x in flat if x)
    return html.unescape(str(value)).strip()


def _item_frame(rows: list[dict], item_ids: list[str]) -> pd.DataFrame:
    """Item table over `item_ids`, text filled where `rows` has it (keyed by item_id)."""
    by_id = {str(r["item_id"]): r for r in rows}
    records = []
    for item_id in item_ids:
        row = by_id.get(item_id, {})
        records.append({
            "item_id": item_id,
            "title": _text(row.get("title")),
            "description": _text(row.get("description")),
            "brand": _text(row.get("brand")),
            "categories": _text(row.get("categories")),
            "image": row.get("image") or row.get("image_url") or None,
        })
    return pd.DataFrame(records, columns=ITEM_COLUMNS)


def _sorted_ids(ids: set[str]) -> list[str]:
    return sorted(ids, key=lambda x: (len(x), x)) if all(i.isdigit() for i in ids) else sorted(ids)


def read_lcrec(folder: Path) -> RawDataset:
    """LC-Rec json: `<Name>.inter.json` {user: [item, ...]} and optional `<Name>.item.json` {item: {...}}."""
    inter_files = sorted(folder.glob("*.inter.json*"))
    if not inter_files:
        raise DataFormatError(f"{folder}: no *.inter.json(.gz) file")
    raw = _load_json(inter_files[0])
    if not isinstance(raw, dict):
        raise DataFormatError(f"{inter_files[0]}: expected an object mapping user id to item list")
    sequences = {str(u): [str(i) for i in seq] for u, seq in raw.items()}
    item_ids = _sorted_ids({i for seq in sequences.values() for i in seq})
    meta_rows: list[dict] = []
    item_files = sorted(folder.glob("*.item.json*"))
    if item_files:
        meta = _load_json(item_files[0])
        if not isinstance(meta, dict):
            raise DataFormatError(f"{item_files[0]}: expected an object mapping item id to fields")
        meta_rows = [{"item_id": k, **v} for k, v in meta.items()]
    return RawDataset(sequences, _item_frame(meta_rows, item_ids))


def read_s3rec(folder: Path) -> RawDataset:
    """S3-Rec sequences (`<Name>.txt.gz`: `user item item ...`), item text from `items.jsonl.gz` if present."""
    seq_files = [p for p in sorted(folder.glob("*.txt*")) if p.name.split(".")[0] not in {"user_sequence"}
                 and not p.name.endswith(".info.txt")]
    if not seq_files:
        raise DataFormatError(f"{folder}: no S3-Rec sequence file (<Name>.txt.gz)")
    path = seq_files[0]
    sequences: dict[str, list[str]] = {}
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if not all(p.isdigit() for p in parts) or len(parts) < 2:
                raise DataFormatError(f"{path}: line {lineno}: expected 'user_id item_id item_id ...' integers")
            sequences[parts[0]] = parts[1:]
    item_ids = _sorted_ids({i for seq in sequences.values() for i in seq})
    meta_rows = []
    meta_path = folder / "items.jsonl.gz"
    if meta_path.is_file():
        meta_rows = [obj for _, obj in iter_json_objects(meta_path)]
    return RawDataset(sequences, _item_frame(meta_rows, item_ids))


def _literal_list(value: str, path: Path, lineno: int, column: str) -> list:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise DataFormatError(f"{path}: line {lineno}: column {column!r} is not a list literal") from None
    if not isinstance(parsed, list):
        raise DataFormatError(f"{path}: line {lineno}: column {column!r} is not a list")
    return parsed


def read_minionerec(folder: Path) -> RawDataset:
    """MiniOneRec valid/test CSVs (evaluation only: their training split is not available)."""
    item_files = sorted(folder.glob("*.item.json*"))
    if not item_files:
        raise DataFormatError(f"{folder}: no *.item.json(.gz) file")
    item_file = item_files[0]
    meta = _load_json(item_file)
    if not isinstance(meta, dict):
        raise DataFormatError(f"{item_file}: expected an object mapping item id to fields")
    meta_rows = []
    for key, fields in meta.items():
        fields = dict(fields)
        desc = fields.get("description")
        if isinstance(desc, str) and desc.startswith("["):
            try:
                fields["description"] = " ".join(map(str, ast.literal_eval(desc)))
            except (ValueError, SyntaxError):
                pass
        meta_rows.append({"item_id": key, **fields})
    samples = []
    for split in ("valid", "test"):
        files = sorted(folder.glob(f"*.{split}.csv*"))
        if not files:
            raise DataFormatError(f"{folder}: no *.{split}.csv(.gz) file")
        frame = pd.read_csv(files[0], dtype=str)
        missing = {"user_id", "history_item_id", "item_id"} - set(frame.columns)
        if missing:
            raise DataFormatError(f"{files[0]}: missing columns {sorted(missing)}")
        seen: dict[str, int] = {}
        for row_no, row in enumerate(frame.itertuples(index=False), 2):
            history = [str(i) for i in _literal_list(row.history_item_id, files[0], row_no, "history_item_id")]
            k = seen[row.user_id] = seen.get(row.user_id, -1) + 1
            samples.append({"user_id": f"{row.user_id}#{k}", "split": split, "history": history,
                            "target": str(row.item_id)})
    item_ids = _sorted_ids({r["item_id"] for r in meta_rows})
    return RawDataset({}, _item_frame(meta_rows, item_ids), samples)


def read_generic(interactions: Path, item_meta: Path | None) -> RawDataset:
    """Bring-your-own data: interactions CSV/Parquet (user_id, item_id[, timestamp]) + optional item JSONL."""
    if not interactions.is_file():
        raise DataFormatError(f"{interactions}: file not found")
    try:
        frame = (pd.read_parquet(interactions) if interactions.suffix == ".parquet"
                 else pd.read_csv(interactions, dtype={"user_id": str, "item_id": str}))
    except Exception as exc:  # pandas raises many types; the message names the line
        raise DataFormatError(f"{interactions}: cannot read ({exc})") from None
    missing = {"user_id", "item_id"} - set(frame.columns)
    if missing:
        raise DataFormatError(f"{interactions}: missing columns {sorted(missing)} (need user_id, item_id[, timestamp])")
    for col in ("user_id", "item_id"):
        bad = frame[col].isna()
        if bad.any():
            line = int(bad.to_numpy().argmax()) + 2
            raise DataFormatError(f"{interactions}: line {line}: empty {col}")
    frame = frame.astype({"user_id": str, "item_id": str})
    if "timestamp" in frame.columns:
        frame = frame.sort_values(["user_id", "timestamp"], kind="stable")
    sequences = {u: list(g["item_id"]) for u, g in frame.groupby("user_id", sort=False)}
    item_ids = _sorted_ids(set(frame["item_id"]))
    meta_rows = []
    if item_meta is not None:
        for lineno, obj in iter_json_objects(item_meta):
            if "item_id" not in obj:
                raise DataFormatError(f"{item_meta}: line {lineno}: missing 'item_id'")
            meta_rows.append(obj)
    return RawDataset(sequences, _item_frame(meta_rows, item_ids))
