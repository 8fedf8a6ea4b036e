"""Optimiser with weight-decay-free norm/bias parameters, and the warmup + cosine/step learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from instseg.engine.config import TrainConfig

# Normalisation layers whose affine parameters should not be pulled towards 0 by weight decay.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm,
)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights that decay, and norm-layer parameters plus biases (any 0/1-d tensor) that do not.

    Decaying normalisation scales/shifts and biases only fights the normalisation; the usual practice in
    detection recipes is to exempt them. Frozen parameters (``requires_grad=False``) are left out.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_TYPES)
        for param in module.parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if is_norm or param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with momentum) or AdamW over ``param_groups(model)``."""
    groups = param_groups(model, cfg.weight_decay)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    raise ValueError(f"train.optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")


class WarmupSchedule:
    """Learning-rate factor at optimiser step ``step``: linear warmup, then cosine or step decay.

    A callable class (not a closure) so that ``LambdaLR.state_dict`` stores its plain attributes in checkpoints.
    """

    def __init__(
        self,
        max_iters: int,
        warmup_iters: int = 0,
        warmup_factor: float = 0.001,
        schedule: str = "cosine",
        min_lr_factor: float = 0.0,
        steps: tuple[int, ...] = (),
        gamma: float = 0.1,
    ) -> None:
        self.max_iters = max_iters
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        self.schedule = schedule
        self.min_lr_factor = min_lr_factor
        self.steps = list(steps)
        self.gamma = gamma

    def __call__(self, step: int) -> float:
        if self.schedule == "cosine":
            span = max(1, self.max_iters - self.warmup_iters)
            progress = min(1.0, max(0.0, (step - self.warmup_iters) / span))
            factor = self.min_lr_factor + (1.0 - self.min_lr_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            factor = self.gamma ** sum(step >= s for s in self.steps)
        if step < self.warmup_iters:
            alpha = step / self.warmup_iters
            factor *= self.warmup_factor * (1.0 - alpha) + alpha
        return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> LambdaLR:
    """Per-optimiser-step schedule (call ``scheduler.step()`` after every ``optimizer.step()``)."""
    schedule = WarmupSchedule(
        cfg.max_iters, cfg.warmup_iters, cfg.warmup_factor, cfg.schedule, cfg.min_lr_factor, cfg.steps, cfg.gamma
    )
    return LambdaLR(optimizer, schedule)
