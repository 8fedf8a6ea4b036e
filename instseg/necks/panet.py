"""PANet's bottom-up path augmentation (Liu et al., 2018) on top of an ``FPN``: a short path from the finest level
up to the coarsest, so that low-level localisation detail reaches every level in a few layers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from instseg.necks.fpn import FPN


def _conv(channels: int, stride: int, norm_layer: Callable[[int], nn.Module] | None) -> nn.Sequential:
    """3x3 conv (+ norm) + ReLU keeping ``channels``."""
    norm = norm_layer(channels) if norm_layer is not None else None
    layers: list[nn.Module] = [nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=norm is None)]
    if norm is not None:
        layers.append(norm)
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class PathAugmentedFPN(nn.Module):
    """``FPN`` followed by the bottom-up path: ``N_2 = P_2`` and ``N_{i+1} = conv3x3(conv3x3_stride2(N_i) + P_{i+1})``.

    ``forward(features) -> OrderedDict[str, Tensor]`` has the FPN's names, strides and channels
    (``feature_names``, ``feature_strides``, ``out_channels``), so it replaces an FPN in any method. When the FPN
    adds a max-pooled top level, that level is pooled again from the augmented coarsest one. Each conv has its own
    norm (a norm shared by levels would mix their statistics).
    """

    def __init__(self, fpn: FPN, norm_layer: Callable[[int], nn.Module] | None = None) -> None:
        super().__init__()
        self.fpn = fpn
        self.feature_names = list(fpn.feature_names)
        self.feature_strides = list(fpn.feature_strides)
        self.out_channels = fpn.out_channels
        self.top_pool = fpn.top_pool
        levels = len(self.feature_names) - (1 if self.top_pool else 0)
        channels = fpn.out_channels
        self.down = nn.ModuleList([_conv(channels, 2, norm_layer) for _ in range(levels - 1)])
        self.fuse = nn.ModuleList([_conv(channels, 1, norm_layer) for _ in range(levels - 1)])

    def forward(self, features: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        """Augmented pyramid maps, finest first: Tensor[B, out_channels, H / s, W / s] per level."""
        pyramid = list(self.fpn(features).values())
        levels = pyramid[:-1] if self.top_pool else pyramid
        out = [levels[0]]
        for down, fuse, lateral in zip(self.down, self.fuse, levels[1:], strict=True):
            below = down(out[-1])
            # odd sizes: the stride-2 conv rounds up as the backbone's did, so crop or pad to the lateral's size
            below = below[..., : lateral.shape[-2], : lateral.shape[-1]]
            below = F.pad(below, [0, lateral.shape[-1] - below.shape[-1], 0, lateral.shape[-2] - below.shape[-2]])
            out.append(fuse(below + lateral))
        if self.top_pool:
            out.append(F.max_pool2d(out[-1], 1, 2, 0))  # as torchvision's LastLevelMaxPool
        return OrderedDict(zip(self.feature_names, out, strict=True))
