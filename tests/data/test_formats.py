"""Dataset readers: every shipped format, counts against SOURCE.md, clear errors for bad files."""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from genrec.data import DataConfig, prepare
from genrec.data.config import DEFAULT_DATA_ROOT
from genrec.data.formats import DataFormatError

SHARED = DEFAULT_DATA_ROOT
needs_shared = pytest.mark.skipif(not (SHARED / "beauty").is_dir(), reason=f"{SHARED} not present")


def test_embedded_scientific_matches_source_counts() -> None:
    items, seq, counts = prepare(DataConfig(name="scientific"))
    assert (counts["users"], counts["items"], counts["interactions"]) == (8317, 4344, 58492)
    assert counts["valid_rows"] == counts["test_rows"] == 8317
    assert seq["history"].map(len).max() == 20
    assert (items["title"] != "").all()


@needs_shared
@pytest.mark.parametrize(("name", "users", "items", "interactions"), [
    ("beauty", 22363, 12101, 198502), ("sports", 35598, 18357, 296337),
    ("toys", 19412, 11924, 167597), ("instruments", 24772, 9922, 206153),
])
def test_shared_sets_match_source_counts(name: str, users: int, items: int, interactions: int) -> None:
    item_table, _, counts = prepare(DataConfig(name=name))
    assert (counts["users"], counts["items"], counts["interactions"]) == (users, items, interactions)
    if name in {"beauty", "toys"}:
        assert (item_table["title"] != "").all()
        assert not item_table["title"].str.contains("&amp;").any()


@needs_shared
def test_minionerec_is_evaluation_only() -> None:
    items, seq, counts = prepare(DataConfig(name="industrial_minionerec"))
    assert counts["items"] == 3686 and counts["train_rows"] == 0
    assert (counts["valid_rows"], counts["test_rows"]) == (4532, 4533)
    assert seq["user_id"].is_unique is False or seq.groupby("split")["user_id"].apply(lambda s: s.is_unique).all()


def test_generic_format_sorts_by_timestamp(tmp_path: Path) -> None:
    inter = tmp_path / "inter.csv"
    pd.DataFrame({"user_id": ["u"] * 4 + ["v"] * 3, "item_id": ["c", "a", "b", "d", "a", "b", "c"],
                  "timestamp": [3, 1, 2, 4, 1, 2, 3]}).to_csv(inter, index=False)
    meta = tmp_path / "items.jsonl"
    meta.write_text('{"item_id": "a", "title": "Alpha", "categories": ["x", "y"]}\n')
    items, seq, counts = prepare(DataConfig(name="mine", interactions=inter, item_meta=meta))
    test = seq[(seq["split"] == "test") & (seq["user_id"] == "u")].iloc[0]
    assert list(test["history"]) == ["a", "b", "c"] and test["target"] == "d"
    assert items.set_index("item_id").loc["a", "title"] == "Alpha"
    assert counts["users"] == 2


def test_malformed_files_name_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "Bad.inter.json").write_text('{"0": [1, 2, 3],\n "1": [4, 5 6]}')
    with pytest.raises(DataFormatError, match=r"Bad.inter.json: line 2"):
        prepare(DataConfig(name="bad", path=folder, format="lcrec"))

    s3 = tmp_path / "s3"
    s3.mkdir()
    with gzip.open(s3 / "X.txt.gz", "wt") as fh:
        fh.write("1 1 2 3\n2 4 x 5\n")
    with pytest.raises(DataFormatError, match=r"X.txt.gz: line 2"):
        prepare(DataConfig(name="s3", path=s3, format="s3rec"))

    meta = tmp_path / "m.jsonl"
    meta.write_text('{"item_id": "a"}\n{"title": "no id"}\n')
    inter = tmp_path / "i.csv"
    inter.write_text("user_id,item_id\nu,a\nu,b\nu,c\n")
    with pytest.raises(DataFormatError, match=r"m.jsonl: line 2: missing 'item_id'"):
        prepare(DataConfig(name="g", interactions=inter, item_meta=meta))
