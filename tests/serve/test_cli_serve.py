"""``instseg serve`` on the command line: its options, and refusals before anything listens."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from instseg.cli.main import app as cli


def test_help_lists_the_serving_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--max-batch", "--batch-timeout-ms", "--api-key-file"):
        assert option in result.output


def test_bad_key_file_and_onnx_without_runtime_are_refused(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text("short\n")
    result = CliRunner().invoke(cli, ["serve", "--api-key-file", str(tmp_path / "keys.txt")])
    assert result.exit_code == 2 and "shorter than 16 characters" in result.output
    result = CliRunner().invoke(cli, ["serve", "--api-key-file", str(tmp_path / "absent.txt")])
    assert result.exit_code == 2 and "absent.txt" in result.output
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "missing.pt" in result.output and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["serve", "--max-batch", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["serve", "--tile", "100"])
    assert result.exit_code == 2 and "tile size 100" in result.output
