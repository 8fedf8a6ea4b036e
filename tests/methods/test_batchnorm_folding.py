"""Folding BatchNorm into convolutions changes no output of a model with trained-looking statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import instseg
from instseg import ImageBatch


@pytest.mark.parametrize("name", ["solov2_light_resnet18", "yolact_light_mobilenetv3", "watershed_unet"])
def test_fused_model_matches_the_unfused_one(name: str) -> None:
    torch.manual_seed(0)
    model = instseg.create_model(name, num_classes=3, min_size=64, max_size=64)
    for module in model.modules():  # non-trivial statistics, as after training
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    model.eval()
    batch = ImageBatch.from_tensors([torch.rand(3, 64, 96) * 255], 32)
    with torch.no_grad():
        before = model(batch)
        norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        model.fuse_for_inference()
        after = model(batch)
    left = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert norms > 10 and left == 0, (norms, left)
    for key, value in before.items():
        torch.testing.assert_close(value, after[key], atol=1e-4, rtol=1e-4, msg=key)
    with torch.no_grad():  # predictions still come back at the original size
        pred = model.predict(torch.rand(3, 50, 70) * 255)
    assert pred.image_size == (50, 70)
