"""The training loop on the tiny model: run-folder contents, exact resume, the NaN guard, checkpoint evaluation."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_testdata import tiny_config, write_synthetic

from instseg.engine.checkpoint import load_checkpoint, load_model
from instseg.engine.evaluate import evaluate_checkpoint
from instseg.engine.launch import train_from_config
from instseg.engine.overrides import apply_overrides
from instseg.engine.trainer import NonFiniteLossError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Exact equality of nested checkpoint entries (torch.equal on every tensor)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_training_writes_the_run_folder(synthetic: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    metrics = train_from_config(tiny_config(synthetic), run)
    assert {"last.pt", "best.pt", "metrics.csv", "config.yaml", "curves.png"} <= {p.name for p in run.iterdir()}
    assert 0.0 <= metrics["segm/AP"] <= 1.0 and "match/F1@0.5" in metrics
    state = load_checkpoint(run / "last.pt")
    assert state["step"] == 8 and state["data"] == {"epoch": 1, "batches_done": 6}
    assert state["config"]["model"]["kwargs"]["num_classes"] == 1  # filled in from the data
    assert state["classes"] == {"category_ids": [1], "class_names": ["ellipse"]}
    assert state["metrics"] == pytest.approx(metrics)
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["loss"]] == [2, 4, 6, 8]
    evaluated = {int(r["step"]): float(r["segm/AP"]) for r in rows if r["segm/AP"]}
    assert list(evaluated) == [4, 8]
    best_step = max(evaluated, key=lambda s: (evaluated[s], -s))
    best = load_checkpoint(run / "best.pt")
    assert best["step"] == best_step and best["best"]["value"] == pytest.approx(evaluated[best_step])
    assert all(float(r["loss"]) > 0 for r in rows if r["loss"])
    # The checkpoint alone rebuilds the model (EMA weights) and re-evaluates to the same figures.
    model = load_model(run / "last.pt")
    _assert_same(model.state_dict(), state["ema"]["state"], "ema")
    again = evaluate_checkpoint(run / "last.pt", synthetic / "annotations" / "instances_val.json")
    assert again["segm/AP"] == pytest.approx(metrics["segm/AP"])
    with pytest.raises(ValueError, match="already holds a run"):
        train_from_config(tiny_config(synthetic), run)


@pytest.fixture(scope="module")
def straight_run(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 steps in one go (the reference of the resume tests)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        train_from_config(tiny_config(synthetic, eval_period=0), run)
    return run


@pytest.mark.parametrize("stop_at", [3, 5])  # mid-epoch, and exactly at an epoch end (5 steps = 10 batches)
def test_resume_continues_exactly(synthetic: Path, straight_run: Path, tmp_path: Path, stop_at: int) -> None:
    cfg = tiny_config(synthetic, eval_period=0)
    train_from_config(cfg, tmp_path / "split", stop_at=stop_at)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == stop_at
    train_from_config(cfg, tmp_path / "split", resume=True)
    a = load_checkpoint(straight_run / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "last.pt")
    for key in ("step", "model", "ema", "optimizer", "scheduler", "rng", "data", "metrics"):
        _assert_same(a[key], b[key], key)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(synthetic: Path, tmp_path: Path) -> None:
    # accumulate=2: loss call 9 is the first micro-batch of step 5; last.pt was written at step 4
    cfg = apply_overrides(tiny_config(synthetic), ["model.kwargs.nan_at_call=9"])
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 5 \(rank 0: loss_fg=nan, loss_zero=-?0\)"):
        train_from_config(cfg, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_refuses_a_different_model(synthetic: Path, tmp_path: Path) -> None:
    train_from_config(tiny_config(synthetic, max_iters=2, eval_period=0), tmp_path / "run")
    other = apply_overrides(tiny_config(synthetic, max_iters=4), ["model.kwargs.hidden=6"])
    with pytest.raises(ValueError, match=r"model config .* differs"):
        train_from_config(other, tmp_path / "run", resume=True)
    with pytest.raises(ValueError, match=r"last\.pt does not exist"):
        train_from_config(other, tmp_path / "fresh", resume=True)
