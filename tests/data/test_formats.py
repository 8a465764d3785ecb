"""Dataset readers: every shipped format, counts against SOURCE.md, clear errors for bad files."""

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from genrec.data import DataConfig, prepare
from genrec.data.formats import DataFormatError


def test_embedded_scientific_matches_source_counts() -> None:
    items, seq, counts = prepare(DataConfig(name="scientific"))
    assert (counts["users"], counts["items"], counts["interactions"]) == (8317, 4344, 58492)
    assert counts["valid_rows"] == counts["test_rows"] == 8317
    assert seq["history"].map(len).max() == 20
    assert (items["title"] != "").all()


def test_s3rec_sequences_with_item_text(tmp_path: Path) -> None:
    """The S3-Rec layout of beauty/sports/toys: `<Name>.txt.gz` lines `user item item ...`, item text in
    items.jsonl.gz (HTML entities unescaped, nested categories flattened); user_sequence.txt.gz is ignored."""
    folder = tmp_path / "beauty_like"
    folder.mkdir()
    with gzip.open(folder / "Beauty.txt.gz", "wt") as fh:
        fh.write("1 1 2 3 4\n2 2 3 4\n3 4 1 2\n")
    with gzip.open(folder / "user_sequence.txt.gz", "wt") as fh:
        fh.write("not a sequence file\n")
    with gzip.open(folder / "items.jsonl.gz", "wt") as fh:
        for i, title in enumerate(["Nail Lacquer", "Soap &amp; Scrub", "Brush", "Comb"], 1):
            fh.write(json.dumps({"item_id": i, "title": title, "brand": None,
                                 "categories": [["Beauty", "Bath"]], "description": None}) + "\n")
    items, seq, counts = prepare(DataConfig(name="b", path=folder, format="s3rec"))
    assert (counts["users"], counts["items"], counts["interactions"]) == (3, 4, 10)
    titles = items.set_index("item_id")["title"]
    assert titles["2"] == "Soap & Scrub" and not items["title"].str.contains("&amp;").any()
    test = seq[(seq["split"] == "test") & (seq["user_id"] == "1")].iloc[0]
    assert list(test["history"]) == ["1", "2", "3"] and test["target"] == "4"


def test_minionerec_csvs_are_evaluation_only(tmp_path: Path) -> None:
    """MiniOneRec ships only valid/test CSVs: no training rows; a user with several rows gets one id per row."""
    folder = tmp_path / "mini"
    folder.mkdir()
    (folder / "Industrial.item.json").write_text(json.dumps(
        {str(i): {"title": f"Item {i}", "description": "['a', 'b']"} for i in range(1, 6)}))
    header = "user_id,history_item_id,item_id\n"
    (folder / "Industrial.valid.csv").write_text(header + 'u1,"[1, 2]",3\nu2,"[2]",4\n')
    (folder / "Industrial.test.csv").write_text(header + 'u1,"[1, 2, 3]",4\nu1,"[2, 3, 4]",5\n')
    items, seq, counts = prepare(DataConfig(name="m", path=folder, format="minionerec"))
    assert counts["items"] == 5 and counts["train_rows"] == 0
    assert (counts["valid_rows"], counts["test_rows"]) == (2, 2)
    assert seq.groupby("split")["user_id"].apply(lambda s: s.is_unique).all()
    assert items.set_index("item_id").loc["1", "description"] == "a b"


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
