"""CondInst's own networks: the mask branch on P3 and the dynamic mask head that runs the predicted filters."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from instseg.backbones import norm_layer
from instseg.ops.dynamic_conv import dynamic_mask_logits, dynamic_param_count


class MaskBranch(nn.Module):
    """Mask features shared by every instance of an image (Tian et al. 2020, Sec. 3.2): ``num_convs`` 3x3 conv
    (+ norm) + ReLU blocks on the finest pyramid level, then a 1x1 conv to ``out_channels`` (8 in the paper) with no
    activation, so the dynamic filters read signed features. It sees one level only, so ``norm="bn"`` is safe here
    and folds into the convs for inference.

    ``forward(Tensor[B, C, H, W]) -> Tensor[B, out_channels, H, W]``.
    """

    def __init__(
        self, in_channels: int, channels: int = 128, out_channels: int = 8, num_convs: int = 4, norm: str | None = "bn"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers.append(nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, bias=norm is None))
            if norm is not None:
                layers.append(norm_layer(norm)(channels))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(channels if num_convs else in_channels, out_channels, 1))
        self.layers = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class DynamicMaskHead(nn.Module):
    """The per-instance mask FCN of CondInst: ``num_layers`` 1x1 convs of ``channels`` channels (ReLU between, one
    output channel) on the mask features plus two relative-coordinate channels, their weights predicted per point
    by the controller (``instseg.ops.dynamic_conv``). Logits at the features' ``stride`` are upsampled x2
    (bilinear) to ``stride / 2``, the resolution of the loss and of the output masks, as the paper does.

    It owns no parameters, only the layout (``layout``, ``num_params``) shared by the controller, loss and
    post-processing. ``forward(features Tensor[B, C, H, W], image_index Tensor[N], points Tensor[N, 2],
    scales Tensor[N], params Tensor[N, num_params]) -> Tensor[N, 2H, 2W]`` mask logits.
    """

    def __init__(self, in_channels: int = 8, channels: int = 8, num_layers: int = 3, stride: int = 8) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the dynamic mask head needs at least one layer, got {num_layers}")
        self.layout = (in_channels + 2, *([channels] * (num_layers - 1)), 1)
        self.num_params = dynamic_param_count(self.layout)
        self.stride = stride
        self.out_stride = stride // 2

    def forward(self, features: Tensor, image_index: Tensor, points: Tensor, scales: Tensor, params: Tensor) -> Tensor:
        logits = dynamic_mask_logits(features, image_index, points, scales, params, self.layout, self.stride)
        if logits.shape[0] == 0:
            return logits.new_zeros((0, 2 * logits.shape[1], 2 * logits.shape[2]))
        return F.interpolate(logits[:, None], scale_factor=2.0, mode="bilinear", align_corners=False)[:, 0]


def sizes_of_interest(size_ranges: Sequence[tuple[float, float]]) -> list[float]:
    """The scale dividing each level's relative coordinates: the largest object size the level learns (its
    ``size_ranges`` upper end), and twice the lower end for an open-ended top level (at least 64 px). Our choice
    of normalisation: it keeps the coordinates within about -1..1 over the objects a level detects."""
    out = []
    for low, high in size_ranges:
        out.append(float(high) if math.isfinite(high) else max(2.0 * float(low), 64.0))
    return out
