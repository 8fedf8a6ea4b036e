"""EMA of weights: the averaging rule, buffers included, state round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from instseg.engine.ema import ModelEMA


def test_ema_averages_parameters_and_float_buffers() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(net, decay=0.5)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.add_(2.0)
        net[1].num_batches_tracked.add_(7)
    d = ema.current_decay()
    assert d == pytest.approx(min(0.5, 1 / 10))
    ema.update(net)
    after = ema.module.state_dict()
    for key in ("0.weight", "0.bias", "1.weight"):
        assert torch.allclose(after[key], before[key] + (1 - d) * 1.0)
    assert torch.allclose(after["1.running_mean"], before["1.running_mean"] + (1 - d) * 2.0)
    assert int(after["1.num_batches_tracked"]) == 7  # integer buffers are copied
    assert all(not p.requires_grad for p in ema.module.parameters())


def test_ema_state_round_trip_and_decay_ramp() -> None:
    net = nn.Linear(3, 1)
    ema = ModelEMA(net, decay=0.999)
    for _ in range(3):
        ema.update(net)
    other = ModelEMA(nn.Linear(3, 1), decay=0.999)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 3
    assert all(
        torch.equal(a, b)
        for a, b in zip(other.module.state_dict().values(), ema.module.state_dict().values(), strict=True)
    )
    assert ema.current_decay() == pytest.approx(4 / 13)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(net, decay=1.0)
