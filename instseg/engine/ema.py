"""Exponential moving average of a model's weights and buffers (evaluated and exported instead of the raw weights)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """A frozen copy of ``model`` whose parameters and floating buffers track ``decay * ema + (1 - decay) * model``.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (the rule of
    TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so early averages are not dominated by the
    random initialisation. Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) are copied.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update uses."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current weights of ``model`` (same architecture, any wrapper removed) into the average."""
        d = self.current_decay()
        self.updates += 1
        source = model.state_dict()
        for name, ema_value in self.module.state_dict().items():
            value = source[name].detach()
            if ema_value.dtype.is_floating_point:
                ema_value.mul_(d).add_(value.to(ema_value.dtype), alpha=1.0 - d)
            else:
                ema_value.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights and the update count (what a checkpoint stores under ``ema``)."""
        return {"state": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict`` output."""
        self.module.load_state_dict(state["state"])
        self.updates = int(state["updates"])
