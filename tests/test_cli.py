"""The CLI is a thin layer: it runs stages and turns bad input into a clear message and exit code."""

from pathlib import Path

from typer.testing import CliRunner

from genrec.cli import app

runner = CliRunner()


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_data_prepare_prints_statistics(tiny_lcrec: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "prepare", "--set", f"run_dir={tmp_path}", "--set", f"data.path={tiny_lcrec}"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "sequences.parquet").is_file()
    assert (tmp_path / "data" / "manifest.json").is_file()


def test_bad_config_key_exits_2_naming_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "prepare", "--set", "data.nmae=beauty"])
    assert result.exit_code == 2
    assert "data.nmae: unknown key" in flat(result.output)


def test_eval_scores_any_recs_file(tiny_lcrec: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["data", "prepare", "--set", f"run_dir={tmp_path}", "--set", f"data.path={tiny_lcrec}"])
    recs = tmp_path / "mine" / "recs.jsonl"
    recs.parent.mkdir()
    recs.write_text('{"user": "0", "items": ["4", "0", "1", "2", "3", "5", "6", "7"]}\n')
    result = runner.invoke(app, ["eval", "--recs", str(recs), "--set", f"run_dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    assert '"hr@5": 0.166667' in flat(result.output)  # 1 hit of 6 test users

    recs.write_text('{"user": "0", "items": ["4", "0", "1", "2", "3", "5", "6", "99"]}\n')
    result = runner.invoke(app, ["eval", "--recs", str(recs), "--set", f"run_dir={tmp_path}"])
    assert result.exit_code == 1 and "unknown item id '99'" in flat(result.output)


def test_help_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("data", "baseline", "eval", "run"):
        assert command in result.output
