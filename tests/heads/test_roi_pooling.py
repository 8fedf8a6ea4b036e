"""Adaptive feature pooling: every region from every level, level-major along channels."""

from __future__ import annotations

import torch
from torchvision.ops import roi_align

from instseg.heads.roi_pooling import AllLevelRoIAlign


def test_pools_each_region_from_every_level() -> None:
    g = torch.Generator().manual_seed(0)
    features = {"p2": torch.randn(2, 3, 16, 16, generator=g), "p3": torch.randn(2, 3, 8, 8, generator=g)}
    boxes = [torch.tensor([[4.0, 4.0, 30.0, 20.0]]), torch.tensor([[0.0, 0.0, 64.0, 64.0], [8.0, 8.0, 16.0, 40.0]])]
    pool = AllLevelRoIAlign(["p2", "p3"], [4, 8], output_size=5)
    out = pool(features, boxes, [(64, 64), (64, 64)])
    assert out.shape == (3, 6, 5, 5)
    for level, (name, stride) in enumerate([("p2", 4), ("p3", 8)]):
        expected = roi_align(features[name], boxes, (5, 5), spatial_scale=1 / stride, sampling_ratio=2)
        torch.testing.assert_close(out[:, 3 * level : 3 * level + 3], expected)
    assert pool.num_levels == 2
