"""RoI pooling from every pyramid level at once (PANet's adaptive feature pooling), beside torchvision's
``MultiScaleRoIAlign`` which pools each region from one level chosen by its size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align


class AllLevelRoIAlign(nn.Module):
    """``forward(features, boxes, image_shapes) -> Tensor[R, L * C, S, S]``: each region RoIAligned from each of
    the ``L`` levels ``featmap_names`` (strides ``strides``), the levels stacked along channels, level-major.

    It has ``MultiScaleRoIAlign``'s call, so torchvision's ``RoIHeads`` can use it as its box or mask pooler;
    ``boxes`` is one Tensor[R_i, 4] (xyxy, image pixels) per image, R = sum R_i. The heads that read it split the
    channels back into levels and fuse them after a first per-level layer.
    """

    def __init__(
        self, featmap_names: Sequence[str], strides: Sequence[int], output_size: int, sampling_ratio: int = 2
    ) -> None:
        super().__init__()
        if len(featmap_names) != len(strides) or not featmap_names:
            raise ValueError(f"one stride per feature map needed: {list(featmap_names)} and {list(strides)}")
        self.featmap_names = list(featmap_names)
        self.strides = [int(s) for s in strides]
        self.output_size = (output_size, output_size)  # read by code written for MultiScaleRoIAlign
        self.sampling_ratio = sampling_ratio

    @property
    def num_levels(self) -> int:
        """How many levels each region is pooled from."""
        return len(self.featmap_names)

    def forward(self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        """Tensor[R, L * C, S, S]; ``image_shapes`` is unused (the strides are known)."""
        pooled = [
            roi_align(
                features[name],
                boxes,
                self.output_size,
                spatial_scale=1.0 / stride,
                sampling_ratio=self.sampling_ratio,
                aligned=False,  # as MultiScaleRoIAlign, so the heads see the same geometry
            )
            for name, stride in zip(self.featmap_names, self.strides, strict=True)
        ]
        return torch.cat(pooled, dim=1)
