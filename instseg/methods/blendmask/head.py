"""BlendMask's bottom module (Chen et al. 2020, Sec. 3.2): ``K`` image-wide bases at stride 4 from the pyramid."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from instseg.backbones import norm_layer


def _conv(in_channels: int, out_channels: int, norm: str | None) -> nn.Sequential:
    """3x3 conv (+ norm) + ReLU; with ``norm="bn"`` the pair folds into one conv for inference."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm is None)]
    if norm is not None:
        layers.append(norm_layer(norm)(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasisModule(nn.Module):
    """The bottom module: ``num_bases`` score maps ("bases") at half the stride of the finest input level.

    The paper takes its bases from the finest FPN levels with a decoder like YOLACT's protonet or DeepLabV3+'s
    but leaves the details open. Here (as Panoptic FPN's semantic branch merges levels): each of the
    ``num_levels`` finest pyramid maps (P3, P4, P5 by default, so the bases see context beyond P3's receptive
    field) goes through its own 3x3 conv, is upsampled bilinearly to P3's size, and the three are summed; then
    ``num_convs`` 3x3 convs, x2 bilinear upsampling (stride 4), one more 3x3 conv and a 1x1 conv to the bases.
    The bases are raw (unbounded): the blender mixes them with softmax weights into mask logits. Every conv here
    is applied once per forward, so BatchNorm (``norm="bn"``) is safe and folds into the convs for inference.

    ``forward(levels: list of Tensor[B, C, H_l, W_l], finest first) -> Tensor[B, K, 2 H_0, 2 W_0]``.
    """

    def __init__(
        self,
        in_channels: int,
        num_bases: int = 4,
        channels: int = 128,
        num_levels: int = 3,
        num_convs: int = 2,
        norm: str | None = "bn",
    ) -> None:
        super().__init__()
        if num_levels < 1 or num_bases < 1:
            raise ValueError(f"BasisModule needs at least one level and one basis, got {num_levels}, {num_bases}")
        self.num_bases = num_bases
        self.refine = nn.ModuleList(_conv(in_channels, channels, norm) for _ in range(num_levels))
        self.tower = nn.Sequential(*(_conv(channels, channels, norm) for _ in range(num_convs)))
        self.after = _conv(channels, channels, norm)
        self.predict = nn.Conv2d(channels, num_bases, 1)

    def forward(self, levels: Sequence[Tensor]) -> Tensor:
        if len(levels) < len(self.refine):
            raise ValueError(f"BasisModule reads {len(self.refine)} pyramid levels, got {len(levels)}")
        size = levels[0].shape[-2:]
        x = self.refine[0](levels[0])
        for conv, level in zip(self.refine[1:], levels[1:], strict=False):
            x = x + F.interpolate(conv(level), size=size, mode="bilinear", align_corners=False)
        x = F.interpolate(self.tower(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.predict(self.after(x))
