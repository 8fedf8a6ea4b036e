"""``instseg train`` through typer: a run, a resume that extends it, and the errors users see."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from instseg.cli.train import train

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
sys.path.insert(0, str(ENGINE_TESTS))  # the tiny model and the synthetic data writer live with the engine tests

from engine_testdata import write_synthetic  # noqa: E402

from instseg.engine.checkpoint import load_checkpoint  # noqa: E402

app = typer.Typer(add_completion=False)
app.command("train")(train)


@app.command("noop")
def _noop() -> None:
    """A second command, so that typer keeps ``train`` as a named sub-command."""


runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli_train")
    data = write_synthetic(root / "data", num_train=6, num_val=2)
    config = root / "tiny.py"
    config.write_text("from engine_testdata import tiny_config\n\nconfig = tiny_config(max_iters=4, eval_period=0)\n")
    return data, config


def test_train_then_resume_with_a_longer_schedule(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = setup
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", str(config), "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"done: {out}" in result.output and "segm/AP=" in result.output
    assert load_checkpoint(out / "last.pt")["step"] == 4
    assert (out / "config.yaml").read_text().count("val_split: val") == 1
    # --resume without --config takes the run's own config; --set extends it
    result = runner.invoke(app, ["train", "--out", str(out), "--resume", "--set", "train.max_iters=6"])
    assert result.exit_code == 0, result.output
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 6 and state["config"]["train"]["max_iters"] == 6


def test_data_options_and_split_names(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = setup
    args = ["train", "--config", str(config), "--data", str(data / "annotations" / "instances_train.json")]
    args += ["--val-data", str(data / "annotations" / "instances_val.json"), "--out", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--set", "train.max_iters=1"])
    assert result.exit_code == 0, result.output
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["config"]["data"]["train"].endswith("instances_train.json") and "segm/AP" in state["metrics"]


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [
        (["--set", "train.lrr=0.1"], "unknown config key 'train.lrr'", 2),
        (["--set", "model.kwargs.nan_at_call=1"], "non-finite loss at step 1", 1),
        (["--split", "test"], "instances_test.json", 2),
    ],
)
def test_errors_are_reported_without_traceback(
    setup: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str, code: int
) -> None:
    data, config = setup
    args = ["train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "run"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_missing_config_and_existing_run(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = setup
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "give --config FILE" in result.output
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    result = runner.invoke(app, ["train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "already holds a run" in result.output


def test_init_starts_from_another_runs_weights_and_is_recorded(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = setup
    first = tmp_path / "first"
    args = ["train", "--config", str(config), "--data", str(data), "--set", "train.max_iters=2"]
    assert runner.invoke(app, [*args, "--out", str(first)]).exit_code == 0
    # lr tiny: a fine-tune of one step stays next to the weights it started from, far from a fresh model's
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "tuned"), "--init", str(first / "last.pt"), "--set", "train.lr=1e-9"]
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"initialised (\d+) of (\d+) tensors from (\S+)", result.output)
    assert found and found[1] == found[2] and found[3] == str(first / "last.pt"), result.output
    start, tuned = load_checkpoint(first / "last.pt"), load_checkpoint(tmp_path / "tuned" / "last.pt")
    assert tuned["config"]["train"]["init_weights"] == str(first / "last.pt")
    name = "body.0.weight"
    assert torch.allclose(tuned["model"][name], start["ema"]["state"][name], atol=1e-6)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "bad"), "--init", str(tmp_path / "none.pt")])
    assert result.exit_code == 2 and "none.pt does not exist" in result.output and "Traceback" not in result.output
