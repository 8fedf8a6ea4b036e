"""Deformable convolution (Dai et al. 2017; modulated, Zhu et al. 2019) as YOLACT++ puts it in the backbone."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import deform_conv2d

from instseg.backbones import Backbone


class DeformConv2d(nn.Module):
    """A k x k convolution whose sampling grid is shifted by offsets predicted from its own input.

    An offset conv (zero-initialised) predicts ``2 k^2`` offsets per output pixel and, when ``modulated``
    (DCNv2), ``k^2`` modulation logits mapped to ``2 * sigmoid``, so a fresh module equals a plain convolution
    with the same weights (offsets 0, modulation 1) and pretrained weights keep their meaning. The sampling itself
    is ``torchvision.ops.deform_conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = True,
        modulated: bool = True,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.modulated = modulated
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        taps = kernel_size * kernel_size
        self.offset = nn.Conv2d(
            in_channels, (3 if modulated else 2) * taps, kernel_size, stride, padding, dilation, bias=True
        )
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)  # type: ignore[arg-type]
        self.taps = taps

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, modulated: bool = True) -> DeformConv2d:
        """A deformable conv starting from ``conv``'s weights (square kernel, no groups)."""
        if conv.groups != 1 or conv.kernel_size[0] != conv.kernel_size[1]:
            raise ValueError("methods/yolact/deform.py: only square, ungrouped convolutions can become deformable")
        module = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size[0],
            int(conv.stride[0]),
            int(conv.padding[0]),  # type: ignore[index]
            int(conv.dilation[0]),
            conv.bias is not None,
            modulated,
        )
        with torch.no_grad():
            module.weight.copy_(conv.weight)
            if conv.bias is not None and module.bias is not None:
                module.bias.copy_(conv.bias)
        module.requires_grad_(conv.weight.requires_grad)
        return module

    def forward(self, x: Tensor) -> Tensor:
        """Tensor[B, C_in, H, W] -> Tensor[B, C_out, H', W'] with learned sampling offsets."""
        raw = self.offset(x)  # [B, 2k^2 (+ k^2), H', W']
        offset = raw[:, : 2 * self.taps]
        mask = 2.0 * torch.sigmoid(raw[:, 2 * self.taps :]) if self.modulated else None
        return deform_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )


def make_backbone_deformable(
    backbone: Backbone,
    stages: Sequence[str] = ("layer2", "layer3", "layer4"),
    interval: int = 3,
    modulated: bool = True,
) -> int:
    """Turn the 3x3 conv (``conv2``) of every ``interval``-th residual block of ``stages`` into a ``DeformConv2d``.

    YOLACT++ does this in ResNet stages C3..C5 with an interval of 3 blocks, a speed/accuracy trade-off; the
    backbone must be a torchvision-style ResNet (``layer1``..``layer4`` of blocks with ``conv2``). Returns the
    number of convolutions replaced.
    """
    if interval < 1:
        raise ValueError(f"methods/yolact/deform.py: interval must be >= 1, got {interval}")
    replaced = 0
    for stage in stages:
        layer = getattr(backbone, stage, None)
        if not isinstance(layer, nn.Sequential):
            raise ValueError(
                f"methods/yolact/deform.py: backbone {type(backbone).__name__} has no ResNet stage {stage!r}; "
                "deformable convolutions need a ResNet backbone"
            )
        for i, block in enumerate(layer):
            conv = getattr(block, "conv2", None)
            if i % interval == 0 and isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3):
                block.conv2 = DeformConv2d.from_conv(conv, modulated)
                replaced += 1
    return replaced
