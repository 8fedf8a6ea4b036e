"""PANet's RoI heads (Liu et al., 2018): adaptive feature pooling (every region pooled from every level, fused
by an element-wise max after a first per-level layer) and the mask head with its fused fully-connected branch."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdaptiveBoxHead(nn.Module):
    """``forward(x: Tensor[R, L * C, S, S]) -> Tensor[R, dim]``: the first fully-connected layer per level, max over
    the ``num_levels`` levels, then the second one (the box head of torchvision's ``TwoMLPHead`` with the fusion
    inserted between its two layers, where the paper puts it)."""

    def __init__(self, num_levels: int, in_channels: int, roi_size: int, dim: int) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.fc1 = nn.ModuleList([nn.Linear(in_channels * roi_size**2, dim) for _ in range(num_levels)])
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Region features Tensor[R, dim]."""
        levels = x.chunk(self.num_levels, dim=1)  # L x [R, C, S, S]
        fused = torch.stack([fc(level.flatten(1)) for fc, level in zip(self.fc1, levels, strict=True)]).amax(0)
        return torch.relu(self.fc2(torch.relu(fused)))


def _conv_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class FusedMaskHead(nn.Module):
    """``forward(x: Tensor[R, L * C, S, S]) -> Tensor[R, K + 1, 2S, 2S]`` mask logits (index 0 is the background
    class, as torchvision's ``maskrcnn_loss`` and ``maskrcnn_inference`` index them).

    A first 3x3 conv per level, max over levels, ``num_convs - 1`` more 3x3 convs and a 2x deconv to per-class logits
    (the FCN path). The fused branch leaves after the third conv: two more 3x3 convs (the second halving the
    channels) and one fully-connected layer to a class-agnostic ``2S x 2S`` map added to every class's logits: a
    fully-connected layer sees the whole region, so it can tell one object from its touching neighbour where the
    convolutions only see a neighbourhood.
    """

    def __init__(
        self,
        num_levels: int,
        in_channels: int,
        num_classes: int,
        roi_size: int,
        channels: int = 256,
        num_convs: int = 4,
    ) -> None:
        super().__init__()
        if num_convs < 3:
            raise ValueError(f"the fused branch leaves after the third conv: num_convs must be >= 3, got {num_convs}")
        self.num_levels = num_levels
        self.first = nn.ModuleList([_conv_relu(in_channels, channels) for _ in range(num_levels)])
        self.to_branch = nn.Sequential(*[_conv_relu(channels, channels) for _ in range(2)])  # convs 2 and 3
        self.rest = nn.Sequential(*[_conv_relu(channels, channels) for _ in range(num_convs - 3)])
        self.upsample = nn.Sequential(nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.ReLU(inplace=True))
        self.logits = nn.Conv2d(channels, num_classes + 1, 1)
        self.fc_convs = nn.Sequential(_conv_relu(channels, channels), _conv_relu(channels, channels // 2))
        self.mask_size = 2 * roi_size
        self.fc = nn.Linear(channels // 2 * roi_size**2, self.mask_size**2)

    def forward(self, x: Tensor) -> Tensor:
        """Per-class mask logits Tensor[R, K + 1, 2S, 2S]."""
        levels = x.chunk(self.num_levels, dim=1)  # L x [R, C, S, S]
        fused = torch.stack([conv(level) for conv, level in zip(self.first, levels, strict=True)]).amax(0)
        branch = self.to_branch(fused)  # [R, channels, S, S]
        fcn = self.logits(self.upsample(self.rest(branch)))  # [R, K + 1, 2S, 2S]
        fc = self.fc(self.fc_convs(branch).flatten(1))  # [R, (2S)^2] class-agnostic logits
        return fcn + fc.reshape(-1, 1, self.mask_size, self.mask_size)
