"""recs.jsonl: round trip and every malformed-input error names the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrec.eval.recs import RecsFormatError, read_recs, write_recs

ITEMS = [str(i) for i in range(12)]


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _line(user: str, items: list[str]) -> str:
    return json.dumps({"user": user, "items": items})


def test_round_trip_with_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "eval" / "x" / "recs.jsonl"
    n = write_recs(path, [("u1", ITEMS[:10]), ("u2", ITEMS[2:12])], extra={"u1": {"scores": [1.0] * 10}})
    assert n == 2
    recs = read_recs(path, known_items=set(ITEMS))
    assert recs == {"u1": ITEMS[:10], "u2": ITEMS[2:12]}
    assert json.loads(path.read_text().splitlines()[0])["scores"] == [1.0] * 10


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "recs.jsonl", [_line("u1", ITEMS[:10]), '{"user": "u2", "items": [1, 2'])
    with pytest.raises(RecsFormatError, match=r"recs\.jsonl: line 2: invalid JSON"):
        read_recs(path)


def test_wrong_shape_names_line(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "recs.jsonl", [json.dumps({"user": "u1", "items": "0 1 2"})])
    with pytest.raises(RecsFormatError, match="line 1: expected"):
        read_recs(path)


def test_unknown_item_id(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "recs.jsonl", [_line("u1", ITEMS[:9] + ["999"])])
    with pytest.raises(RecsFormatError, match=r"line 1: unknown item id '999'"):
        read_recs(path, known_items=set(ITEMS))


def test_duplicate_user(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "recs.jsonl", [_line("u1", ITEMS[:10]), _line("u2", ITEMS[:10]),
                                                  _line("u1", ITEMS[1:11])])
    with pytest.raises(RecsFormatError, match=r"line 3: user 'u1' appears twice"):
        read_recs(path)


def test_too_few_items(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "recs.jsonl", [_line("u1", ITEMS[:9])])
    with pytest.raises(RecsFormatError, match=r"line 1: user 'u1' has 9 items, need >= 10"):
        read_recs(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecsFormatError, match="file not found"):
        read_recs(tmp_path / "nope.jsonl")
