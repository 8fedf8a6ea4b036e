"""CenterMask's spatial attention-guided mask head (SAG-Mask, Lee & Park 2020): Mask R-CNN's mask convs with a
spatial attention map that weights each RoI's pixels before the upsampling."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SpatialAttentionMaskHead(nn.Module):
    """``forward(x: Tensor[R, C, S, S]) -> Tensor[R, K, 2S, 2S]`` per-class mask logits of pooled regions.

    ``num_convs`` 3x3 convs, then the spatial attention: the channel-wise mean and max of the features (two maps),
    a 3x3 conv and a sigmoid give one weight per pixel that multiplies every channel, so that pixels of the region's
    own object count and those of a touching neighbour inside the same box are damped; then a 2x deconv and a 1x1
    conv to ``num_classes`` logits.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, num_convs: int = 4) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"num_convs must be >= 1, got {num_convs}")
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.attention = nn.Conv2d(2, 1, 3, padding=1)
        self.upsample = nn.Sequential(nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.ReLU(inplace=True))
        self.logits = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Mask logits Tensor[R, K, 2S, 2S]."""
        x = self.convs(x)  # [R, channels, S, S]
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # [R, 2, S, S]
        x = x * self.attention(pooled).sigmoid()
        return self.logits(self.upsample(x))
