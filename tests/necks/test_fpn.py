"""FPN neck: output names, strides and shapes on any backbone's feature description."""

from __future__ import annotations

import torch

from instseg.backbones import build_backbone
from instseg.necks import FPN


def test_fpn_levels_follow_the_backbone() -> None:
    backbone = build_backbone("resnet18")
    neck = FPN(backbone.feature_names, backbone.feature_channels, backbone.feature_strides, out_channels=32)
    assert neck.feature_names == ["p2", "p3", "p4", "p5", "p6"]
    assert neck.feature_strides == [4, 8, 16, 32, 64]
    with torch.no_grad():
        out = neck(backbone.eval()(torch.rand(1, 3, 64, 128)))
    assert list(out) == neck.feature_names
    for feat, stride in zip(out.values(), neck.feature_strides, strict=True):
        assert feat.shape == (1, 32, 64 // stride if stride <= 64 else 1, 128 // stride)


def test_fpn_without_top_pool_and_with_norm() -> None:
    feats = {"c3": torch.rand(1, 8, 16, 16), "c4": torch.rand(1, 16, 8, 8)}
    neck = FPN(
        ["c3", "c4"], [8, 16], [8, 16], out_channels=8, top_pool=False, norm_layer=lambda c: torch.nn.GroupNorm(4, c)
    )
    out = neck(feats)
    assert list(out) == ["p3", "p4"] and neck.feature_strides == [8, 16]
    assert out["p3"].shape == (1, 8, 16, 16)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in neck.modules())
