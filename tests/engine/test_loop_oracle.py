"""The training loop against hand computation: one SGD step by hand, what ``metrics.csv`` holds, when the loop
evaluates and saves, which evaluation counts as best, and what a resume with a changed config continues with.

A twin of each trainer (same seed, same weights, no BatchNorm, no augmentation) or plain autograd gives the
expected numbers, so a wrong average, a wrong period test or a lost state shows as a different value.
"""

from __future__ import annotations

import copy
import csv
import math
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from oracle_squares import Scripted, Squares, squares_config
from pixel_oracle_model import PixelOracleModel
from torch import nn

from instseg.data.collate import collate_batch
from instseg.engine.batch_stream import BatchStream
from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.config import Config
from instseg.engine.optim import WarmupSchedule
from instseg.engine.trainer import Trainer


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trainer(cfg: Config, out: Path, script: list[float] | None = None, model: nn.Module | None = None) -> Trainer:
    torch.manual_seed(0)
    net = model if model is not None else PixelOracleModel()
    data = Squares()
    evaluator = Scripted(script) if script is not None else None
    return Trainer(cfg, net, data, out, val_set=data if script is not None else None, evaluator=evaluator)  # type: ignore[arg-type]


def _spy_saves(trainer: Trainer) -> list[tuple[str, int]]:
    """Record ``(file name, step)`` of every save the loop makes."""
    saved: list[tuple[str, int]] = []
    original = trainer.save

    def spy(name: str) -> Path:
        saved.append((name, trainer.step))
        return original(name)

    trainer.save = spy  # type: ignore[method-assign]
    return saved


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_two_steps_equal_sgd_with_momentum_decay_clipping_and_warmup_by_hand(tmp_path: Path) -> None:
    cfg = squares_config(accumulate=2, warmup_iters=2, warmup_factor=0.1, clip_grad_norm=0.05)
    trainer = _trainer(cfg, tmp_path / "run")
    model = copy.deepcopy(trainer.model)
    stream = BatchStream(Squares(), 1, partial(collate_batch, size_divisibility=1), 0, cfg.train.seed)
    buffers: dict[str, torch.Tensor] = {}
    for step in range(2):
        micro = [next(stream) for _ in range(2)]
        model.zero_grad()
        losses = []
        for batch, targets, _ in micro:
            loss = model.loss(model(batch), targets)["loss_fg"]
            (loss / 2).backward()
            losses.append(float(loss.detach()))
        terms = trainer.train_step()
        assert terms == pytest.approx({"loss_fg": sum(losses) / 2, "loss": sum(losses) / 2}, rel=1e-6)
        norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))  # type: ignore[union-attr]
        coef = min(1.0, 0.05 / (norm + 1e-6))
        lr = 0.5 * WarmupSchedule(4, 2, 0.1)(step)
        with torch.no_grad():
            for name, p in model.named_parameters():
                grad = p.grad * coef  # type: ignore[operator]
                if p.ndim > 1:  # conv weights decay, biases do not
                    grad = grad + 1e-3 * p
                buffers[name] = grad if step == 0 else 0.9 * buffers[name] + grad
                p -= lr * buffers[name]
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * WarmupSchedule(4, 2, 0.1)(step + 1))
        for name, value in model.state_dict().items():
            torch.testing.assert_close(trainer.model.state_dict()[name], value, rtol=1e-5, atol=1e-7, msg=name)
    assert trainer.step == 2


def test_metrics_rows_average_each_log_window_and_record_the_step_lr(tmp_path: Path) -> None:
    cfg = squares_config(max_iters=5, log_period=2, warmup_iters=2, warmup_factor=0.1, schedule="step", steps=(3,))
    twin = _trainer(cfg, tmp_path / "twin")
    steps = []
    for _ in range(5):
        lr = twin.optimizer.param_groups[0]["lr"]
        steps.append((lr, twin.train_step()["loss"]))
    assert [lr for lr, _ in steps] == pytest.approx([0.05, 0.275, 0.5, 0.05, 0.05])

    run = tmp_path / "run"
    trainer = _trainer(cfg, run, [0.1, 0.2, 0.3])
    saved = _spy_saves(trainer)
    assert trainer.train() == {"score": 0.3, "images": 4.0}
    rows = _rows(run)
    losses = [(int(r["step"]), float(r["loss"]), float(r["lr"])) for r in rows if r["loss"]]
    expected = [
        (2, (steps[0][1] + steps[1][1]) / 2, steps[1][0]),
        (4, (steps[2][1] + steps[3][1]) / 2, steps[3][0]),
        (5, steps[4][1], steps[4][0]),  # the last step logs a window of one
    ]
    assert [s for s, _, _ in losses] == [s for s, _, _ in expected]
    for (_, loss, lr), (_, want_loss, want_lr) in zip(losses, expected, strict=True):
        assert loss == pytest.approx(want_loss, rel=1e-6) and lr == pytest.approx(want_lr)
    assert all(float(r["it_per_s"]) > 0 for r in rows if r["loss"])
    assert [(int(r["step"]), float(r["score"])) for r in rows if r["score"]] == [(2, 0.1), (4, 0.2), (5, 0.3)]
    # evaluation before saving; last.pt every 2 steps and at the end; best.pt on each improvement
    assert saved == [("best.pt", 2), ("last.pt", 2), ("best.pt", 4), ("last.pt", 4), ("best.pt", 5), ("last.pt", 5)]
    assert (run / "curves.png").is_file()


def test_stop_and_resume_save_and_evaluate_on_the_same_steps_as_one_run(tmp_path: Path) -> None:
    cfg = squares_config(max_iters=5, eval_period=2, checkpoint_period=2)
    run = tmp_path / "run"
    first = _trainer(cfg, run, [0.4, 0.1, 0.2])
    saved = _spy_saves(first)
    first.train(stop_at=3)
    assert saved == [("best.pt", 2), ("last.pt", 2), ("last.pt", 3)]  # step 3: no evaluation, saved as the end
    assert first.evaluator.calls == 1 and not (run / "curves.png").exists()  # type: ignore[union-attr]
    assert [r["step"] for r in _rows(run) if r["loss"]] == ["1", "2", "3"]
    second = _trainer(cfg, run, [0.1, 0.2])
    saved = _spy_saves(second)
    second.train(resume=True)
    assert saved == [("last.pt", 4), ("last.pt", 5)]  # 0.1 and 0.2 never beat the 0.4 of step 2
    assert second.best == {"metric": "score", "value": 0.4, "step": 2}
    assert (run / "curves.png").is_file()
    with pytest.raises(ValueError, match="already holds a run"):
        _trainer(cfg, run, [0.1]).train()


@pytest.mark.parametrize(
    ("script", "best_step"),
    [([0.5, 0.5], 2), ([0.5, 0.9], 4), ([0.9, 0.5], 2), ([math.nan, 0.3], 4), ([0.3, math.nan], 2)],
)
def test_best_mode_max_keeps_the_first_of_the_highest_finite_values(
    tmp_path: Path, script: list[float], best_step: int
) -> None:
    trainer = _trainer(squares_config(), tmp_path / "run", script)
    trainer.train()
    value = max(v for v in script if not math.isnan(v))
    assert trainer.best == {"metric": "score", "value": value, "step": best_step}
    assert load_checkpoint(tmp_path / "run" / "best.pt")["step"] == best_step


def test_a_best_metric_missing_from_the_figures_warns_and_writes_no_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trainer = _trainer(squares_config(best_metric="segm/AP"), tmp_path / "run", [0.5, 0.9])
    trainer.train()
    err = capsys.readouterr().err
    assert err.count("best metric 'segm/AP' is not among the evaluation figures") == 2
    assert trainer.best == {"metric": "segm/AP", "value": None, "step": None}
    assert not (tmp_path / "run" / "best.pt").exists()
    assert "training pixel_oracle_test for 4 steps (4 batches/epoch x 1 process(es)), from step 0" in err


def test_evaluation_uses_the_ema_weights_in_eval_mode_and_restores_training(tmp_path: Path) -> None:
    modes: list[bool] = []

    class Recording(PixelOracleModel):
        def forward(self, images: Any, targets: Any = None) -> dict[str, torch.Tensor]:
            modes.append(self.training)
            return super().forward(images, targets)

    trainer = _trainer(squares_config(ema_decay=0.5, max_iters=2), tmp_path / "run", [0.5], model=Recording())
    trainer.train()
    assert trainer.ema is not None
    # 2 steps x 1 image in training mode, then the EMA copy predicts the 4 images (2 batches) in eval mode
    assert modes == [True, True, False, False] and trainer.model.training
    ema_state = trainer.ema.module.state_dict()
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in ema_state.items())
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["ema"]["updates"] == 2 and last["ema"]["decay"] == 0.5
    for key, value in ema_state.items():
        assert torch.equal(last["ema"]["state"][key], value), key


def test_a_model_with_one_parameter_group_trains(tmp_path: Path) -> None:
    model = PixelOracleModel()
    model.body = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1, bias=False))
    trainer = _trainer(squares_config(max_iters=2, schedule="step"), tmp_path / "run", model=model)
    assert len(trainer.optimizer.param_groups) == 1
    trainer.train()
    assert [float(r["lr"]) for r in _rows(tmp_path / "run")] == pytest.approx([0.5, 0.5])


def test_resume_follows_the_new_schedule_and_starts_a_new_ema_from_the_weights(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _trainer(squares_config(max_iters=4, schedule="cosine"), run).train()
    longer = squares_config(max_iters=8, schedule="cosine", ema_decay=0.9)
    trainer = _trainer(longer, run)
    trainer.resume(run / "last.pt")
    assert trainer.step == 4 and trainer.ema is not None and trainer.ema.updates == 0
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(trainer.ema.module.state_dict()[key], value), key
    # LambdaLR's state holds the step count (4): the factor is the 8-step cosine's at step 4, i.e. 0.5
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * WarmupSchedule(8, 0)(4))
    trainer.train(resume=True)
    assert trainer.step == 8 and trainer.ema.updates == 4


def test_resuming_a_two_rank_checkpoint_in_one_process_takes_rank_0s_generators(tmp_path: Path) -> None:
    from instseg.engine.checkpoint import save_checkpoint
    from instseg.engine.rng import capture_rng_state

    run = tmp_path / "run"
    _trainer(squares_config(max_iters=2), run).train()
    state = load_checkpoint(run / "last.pt")
    torch.manual_seed(123)
    rank0 = capture_rng_state()
    torch.manual_seed(456)
    rank1 = capture_rng_state()
    save_checkpoint({**state, "rng": [rank0, rank1]}, run / "last.pt")
    trainer = _trainer(squares_config(max_iters=4), run)
    trainer.resume(run / "last.pt")
    assert torch.equal(torch.get_rng_state(), rank0["torch"])
    save_checkpoint({**state, "rng": [rank1]}, run / "last.pt")
    trainer.resume(run / "last.pt")
    assert torch.equal(torch.get_rng_state(), rank1["torch"])
