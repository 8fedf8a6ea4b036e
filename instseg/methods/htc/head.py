"""The Hybrid Task Cascade's own heads (Chen et al., 2019): the semantic segmentation branch whose features join
every region's, and the mask head that receives the previous stage's mask features (mask information flow)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class SemanticBranch(nn.Module):
    """``forward(levels: list of Tensor[B, C, H_l, W_l]) -> (logits Tensor[B, K + 1, H_s, W_s], features
    Tensor[B, C, H_s, W_s])`` at the stride of level ``fuse_level`` (stride 8 for P2-P5, as the paper).

    Each level goes through its own 1x1 conv and is resized (bilinear up, or down) to the fused level's size; the
    sum passes ``num_convs`` 3x3 convs, then one 1x1 conv gives the per-pixel class logits (0: background) and
    another the semantic features that are RoI-pooled into the box and mask heads' region features.
    """

    def __init__(
        self,
        in_channels: int,
        num_levels: int,
        num_classes: int,
        channels: int = 256,
        num_convs: int = 4,
        fuse_level: int = 1,
    ) -> None:
        super().__init__()
        if not 0 <= fuse_level < num_levels:
            raise ValueError(f"fuse_level must index one of the {num_levels} levels, got {fuse_level}")
        self.fuse_level = fuse_level
        self.lateral = nn.ModuleList([nn.Conv2d(in_channels, channels, 1) for _ in range(num_levels)])
        layers: list[nn.Module] = []
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.logits = nn.Conv2d(channels, num_classes + 1, 1)
        self.embed = nn.Conv2d(channels, in_channels, 1)

    def forward(self, levels: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Semantic logits and features at the fused level's resolution."""
        if len(levels) != len(self.lateral):
            raise ValueError(f"{len(levels)} levels for a semantic branch of {len(self.lateral)}")
        size = levels[self.fuse_level].shape[-2:]
        x = sum(
            F.interpolate(conv(level), size=size, mode="bilinear", align_corners=False)
            if i != self.fuse_level
            else conv(level)
            for i, (conv, level) in enumerate(zip(self.lateral, levels, strict=True))
        )
        x = self.convs(x)
        return self.logits(x), self.embed(x)


class FlowMaskHead(nn.Module):
    """``forward(x: Tensor[R, C, S, S], previous: Tensor[R, channels, S, S] | None) -> (logits Tensor[R, K + 1, 2S,
    2S], features Tensor[R, channels, S, S])``: Mask R-CNN's mask head (``num_convs`` 3x3 convs, a 2x deconv, 1x1
    logits; index 0 is the background class, as torchvision's mask losses index them) whose input first receives
    the previous stage's features (before their deconv) through a 1x1 conv, when ``with_flow``."""

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 256, num_convs: int = 4, with_flow: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.flow = nn.Conv2d(channels, in_channels, 1) if with_flow else None
        self.upsample = nn.Sequential(nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.ReLU(inplace=True))
        self.logits = nn.Conv2d(channels, num_classes + 1, 1)

    def forward(self, x: Tensor, previous: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Per-class mask logits and this head's features for the next stage."""
        if self.flow is not None:
            if previous is None:
                raise ValueError("a mask head with information flow needs the previous stage's features")
            x = x + self.flow(previous)
        features = self.convs(x)
        return self.logits(self.upsample(features)), features
