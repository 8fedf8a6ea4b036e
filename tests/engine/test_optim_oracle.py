"""The learning-rate schedule against its formula written out independently, over a grid of settings, and the
optimisers against the hyper-parameters the config names."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import torch
from torch import nn

from instseg.engine.config import TrainConfig
from instseg.engine.optim import WarmupSchedule, build_optimizer, build_scheduler, param_groups


def _reference(step: int, t: TrainConfig) -> float:
    """lr factor: linear warmup from warmup_factor to 1 over warmup_iters, times cosine (to min_lr_factor) or step."""
    if t.schedule == "cosine":
        span = max(1, t.max_iters - t.warmup_iters)
        x = min(max((step - t.warmup_iters) / span, 0.0), 1.0)
        decay = t.min_lr_factor + (1 - t.min_lr_factor) * (1 + math.cos(math.pi * x)) / 2
    else:
        decay = t.gamma ** len([s for s in t.steps if step >= s])
    warm = 1.0 if step >= t.warmup_iters else t.warmup_factor + (1 - t.warmup_factor) * step / t.warmup_iters
    return decay * warm


GRID = [
    TrainConfig(max_iters=20, warmup_iters=5, warmup_factor=0.2, schedule="cosine", min_lr_factor=0.25),
    TrainConfig(max_iters=20, warmup_iters=0, schedule="cosine", min_lr_factor=0.0),
    TrainConfig(max_iters=7, warmup_iters=7, warmup_factor=0.5, schedule="cosine", min_lr_factor=0.1),
    TrainConfig(max_iters=20, warmup_iters=4, warmup_factor=0.01, schedule="step", steps=(4, 9, 15), gamma=0.3),
    TrainConfig(max_iters=12, warmup_iters=6, warmup_factor=0.1, schedule="step", steps=(3,), gamma=0.5),
]


@pytest.mark.parametrize("t", GRID, ids=range(len(GRID)))
def test_schedule_equals_the_formula_at_every_step(t: TrainConfig) -> None:
    net = nn.Linear(2, 1)
    cfg = dataclasses.replace(t, lr=0.3)
    opt = build_optimizer(net, cfg)
    sched = build_scheduler(opt, cfg)
    for step in range(t.max_iters + 3):  # past the end the cosine stays at its floor
        want = 0.3 * _reference(step, t)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([want] * len(opt.param_groups), abs=1e-12)
        opt.step()
        sched.step()


def test_schedule_defaults_are_the_configs() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    params = inspect.signature(WarmupSchedule).parameters
    for name in ("warmup_factor", "schedule", "min_lr_factor", "gamma"):
        assert params[name].default == fields[name], name
    assert WarmupSchedule(10, 4)(0) == pytest.approx(fields["warmup_factor"])


def test_optimisers_take_the_configured_hyper_parameters() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    sgd = build_optimizer(net, TrainConfig(optimizer="sgd", lr=0.3, momentum=0.7, weight_decay=0.01))
    assert isinstance(sgd, torch.optim.SGD)
    assert [(g["lr"], g["momentum"], g["weight_decay"]) for g in sgd.param_groups] == [
        (0.3, 0.7, 0.01),
        (0.3, 0.7, 0.0),
    ]
    adamw = build_optimizer(net, TrainConfig(optimizer="adamw", lr=0.002, betas=(0.8, 0.95), weight_decay=0.05))
    assert isinstance(adamw, torch.optim.AdamW)
    assert [(g["lr"], g["betas"], g["weight_decay"]) for g in adamw.param_groups] == [
        (0.002, (0.8, 0.95), 0.05),
        (0.002, (0.8, 0.95), 0.0),
    ]
    frozen = nn.Linear(2, 2)
    frozen.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(frozen, TrainConfig())


def test_shared_and_one_dimensional_parameters_are_grouped_once() -> None:
    conv = nn.Conv2d(1, 2, 1)
    net = nn.Sequential(conv, nn.LayerNorm(2), conv)  # the same conv twice: its weight appears once
    net.scale = nn.Parameter(torch.ones(3))  # type: ignore[assignment]  # a 1-d parameter outside a norm: no decay
    groups = param_groups(net, 0.1)
    assert [len(g["params"]) for g in groups] == [1, 4]
    assert groups[0]["params"][0] is conv.weight
    only_decay = param_groups(nn.Conv2d(1, 1, 1, bias=False), 0.1)
    assert len(only_decay) == 1 and only_decay[0]["weight_decay"] == 0.1
