"""PANet's bottom-up path on an FPN: same names, strides and shapes, the finest level passed through, a real path
from the finest level to the coarsest."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from instseg.necks import FPN, PathAugmentedFPN


def _features(h: int = 64, w: int = 48) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {f"c{k}": torch.randn(1, 8 * k, -(-h // 2**k), -(-w // 2**k), generator=g) for k in (2, 3, 4, 5)}


def _neck(top_pool: bool) -> tuple[FPN, PathAugmentedFPN]:
    torch.manual_seed(0)
    fpn = FPN(["c2", "c3", "c4", "c5"], [16, 24, 32, 40], [4, 8, 16, 32], out_channels=16, top_pool=top_pool)
    return fpn, PathAugmentedFPN(fpn)


def test_keeps_the_fpn_layout_and_passes_the_finest_level_through() -> None:
    fpn, neck = _neck(top_pool=True)
    feats = _features(70, 45)  # odd sizes: the stride-2 convs must still meet the laterals
    plain, out = fpn(feats), neck(feats)
    assert list(out) == list(plain) == neck.feature_names == ["p2", "p3", "p4", "p5", "p6"]
    assert neck.feature_strides == [4, 8, 16, 32, 64]
    for name in plain:
        assert out[name].shape == plain[name].shape, name
    assert torch.equal(out["p2"], plain["p2"])  # N2 = P2
    assert not torch.allclose(out["p5"], plain["p5"])
    assert torch.equal(out["p6"], F.max_pool2d(out["p5"], 1, 2, 0))  # the top pooled from the augmented N5


def test_the_coarsest_level_sees_the_finest_through_the_short_path() -> None:
    _, neck = _neck(top_pool=False)
    feats = _features()
    # P5 of the FPN does not depend on c2 (top-down only); N5 must, through the bottom-up path
    feats["c2"].requires_grad_(True)
    neck(feats)["p5"].sum().backward()
    assert feats["c2"].grad is not None and feats["c2"].grad.abs().sum() > 0
