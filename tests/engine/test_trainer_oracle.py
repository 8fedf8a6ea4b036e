"""The training loop's bookkeeping against equivalences: accumulate 2 x batch 1 == batch 2, resume keeps the best
value and the earlier metrics.csv rows, ``best_mode="min"`` keeps the lowest figure.

A BatchNorm-free model with a per-image mean loss makes the accumulation equivalence exact (BatchNorm's batch
statistics differ between one batch of 2 and two batches of 1), and a scripted evaluator decides which step is
best, so that a later, worse evaluation must not overwrite ``best.pt``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from oracle_squares import Scripted, Squares, squares_config
from pixel_oracle_model import PixelOracleModel

from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.config import Config
from instseg.engine.trainer import Trainer


def _trainer(cfg: Config, out: Path, script: list[float] | None = None) -> Trainer:
    torch.manual_seed(0)  # the same initial weights in every trainer of a test
    model = PixelOracleModel()
    data = Squares()
    evaluator = Scripted(script) if script is not None else None
    return Trainer(cfg, model, data, out, val_set=data if script is not None else None, evaluator=evaluator)


@pytest.mark.parametrize("clip", [None, 0.05])
def test_accumulating_two_batches_of_one_equals_one_batch_of_two(tmp_path: Path, clip: float | None) -> None:
    big = _trainer(squares_config(batch_size=2, accumulate=1, clip_grad_norm=clip), tmp_path / "big")
    small = _trainer(squares_config(batch_size=1, accumulate=2, clip_grad_norm=clip), tmp_path / "small")
    start = {k: v.clone() for k, v in big.model.state_dict().items()}
    for _ in range(3):
        a, b = big.train_step(), small.train_step()
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    moved = 0.0
    for key, value in big.model.state_dict().items():
        torch.testing.assert_close(small.model.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
        moved += float((value - start[key]).abs().sum())
    assert moved > 1e-2  # the steps did change the weights
    assert big.step == small.step == 3


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_resume_keeps_the_best_value_and_the_earlier_rows(tmp_path: Path) -> None:
    cfg = squares_config()
    straight = tmp_path / "straight"
    _trainer(cfg, straight, [0.9, 0.5]).train()
    best = load_checkpoint(straight / "best.pt")
    assert best["step"] == 2 and best["best"] == {"metric": "score", "value": 0.9, "step": 2}

    split = tmp_path / "split"
    _trainer(cfg, split, [0.9]).train(stop_at=2)
    resumed = _trainer(cfg, split, [0.5])  # fresh weights and a fresh evaluator: everything comes from last.pt
    resumed.train(resume=True)
    assert resumed.best == {"metric": "score", "value": 0.9, "step": 2}
    assert load_checkpoint(split / "best.pt")["step"] == 2  # the worse evaluation at step 4 did not overwrite it
    assert load_checkpoint(split / "last.pt")["best"] == best["best"]
    # metrics.csv keeps the rows written before the interruption: the same steps, losses and figures
    a, b = _rows(straight), _rows(split)
    assert [r["step"] for r in a] == [r["step"] for r in b] == ["1", "2", "2", "3", "4", "4"]
    for ra, rb in zip(a, b, strict=True):
        for key in ("loss", "loss_fg", "lr", "score", "images"):
            if ra.get(key):
                assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-6), (ra["step"], key)
            else:
                assert not rb.get(key)
    assert [float(r["images"]) for r in b if r["images"]] == [4.0, 4.0]  # every validation image was processed


@pytest.mark.parametrize(("script", "best_step"), [([0.9, 0.5], 4), ([0.5, 0.9], 2), ([0.5, 0.5], 2)])
def test_best_mode_min_keeps_the_lowest(tmp_path: Path, script: list[float], best_step: int) -> None:
    run = tmp_path / "run"
    trainer = _trainer(squares_config(best_mode="min"), run, script)
    trainer.train()
    assert trainer.best == {"metric": "score", "value": min(script), "step": best_step}
    assert load_checkpoint(run / "best.pt")["step"] == best_step  # a tie keeps the earlier checkpoint


def test_sample_repeats_reach_the_batch_stream(tmp_path: Path) -> None:
    cfg = squares_config(batch_size=2)
    data = Squares()
    plain = Trainer(cfg, PixelOracleModel(), data, tmp_path / "plain")
    doubled = Trainer(cfg, PixelOracleModel(), data, tmp_path / "doubled", sample_repeats=[2] * len(data))
    assert doubled.stream.batches_per_epoch == 2 * len(data) // 2 == 2 * plain.stream.batches_per_epoch


def test_channels_last_trains_on_cpu_with_nhwc_weights(tmp_path: Path) -> None:
    plain = _trainer(squares_config(), tmp_path / "plain")
    nhwc = _trainer(squares_config(channels_last=True), tmp_path / "nhwc")
    conv = nhwc.model.body[2].weight  # type: ignore[index, union-attr]
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for _ in range(3):
        a, b = plain.train_step(), nhwc.train_step()
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)  # the same step, up to summation order
