"""Optimiser parameter groups (no decay on norms and biases) and the warmup + cosine/step schedule."""

from __future__ import annotations

import math

import pytest
from torch import nn

from instseg.engine.config import TrainConfig
from instseg.engine.optim import WarmupSchedule, build_optimizer, build_scheduler, param_groups


def _net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.Conv2d(4, 2, 1, bias=False))
    net[3].weight.requires_grad_(False)  # frozen: left out
    return net


def test_norm_parameters_and_biases_get_no_weight_decay() -> None:
    net = _net()
    decay, no_decay = param_groups(net, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight)}
    expected = {id(net[0].bias), id(net[1].weight), id(net[1].bias), id(net[2].weight), id(net[2].bias)}
    assert {id(p) for p in no_decay["params"]} == expected


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_build_optimizer(name: str) -> None:
    opt = build_optimizer(_net(), TrainConfig(optimizer=name, lr=0.1))  # type: ignore[arg-type]
    assert type(opt).__name__.lower() == name and len(opt.param_groups) == 2


def test_warmup_then_cosine() -> None:
    f = WarmupSchedule(max_iters=110, warmup_iters=10, warmup_factor=0.1, schedule="cosine", min_lr_factor=0.0)
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.55 * (0.5 * (1 + math.cos(0.0))))
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5)
    assert f(110) == pytest.approx(0.0, abs=1e-12)
    floor = WarmupSchedule(max_iters=100, warmup_iters=0, schedule="cosine", min_lr_factor=0.1)
    assert floor(100) == pytest.approx(0.1)


def test_step_schedule_and_scheduler_steps() -> None:
    f = WarmupSchedule(max_iters=100, warmup_iters=0, schedule="step", steps=(30, 60), gamma=0.1)
    assert [f(0), f(29), f(30), f(59), f(60)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    cfg = TrainConfig(lr=0.2, max_iters=4, warmup_iters=2, warmup_factor=0.5, schedule="step", steps=(3,))
    opt = build_optimizer(_net(), cfg)
    sched = build_scheduler(opt, cfg)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.15, 0.2, 0.02])
