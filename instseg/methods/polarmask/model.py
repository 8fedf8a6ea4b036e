"""``PolarMask`` (Xie et al. 2020): an FCOS detector whose every point also predicts its object's contour as ray
lengths in ``n`` fixed directions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from instseg.backbones import Backbone
from instseg.heads import FCOSHead
from instseg.methods.polarmask.loss import PolarMaskLoss
from instseg.methods.polarmask.postprocess import PolarMaskPostprocessor
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.necks import FPN
from instseg.ops.fcos import level_points
from instseg.structures import ImageBatch, Instances

# exp() of larger ray logits would overflow float16 and is far beyond any image (e^8 = 2981 strides)
MAX_RAY_LOGIT = 8.0


class PolarMask(InstanceSegmenter):
    """PolarMask: ``FCOSHead`` on an ``FPN``; its ``extra`` outputs are the ``n_rays`` ray lengths of each point's
    object (``instseg.ops.polar_rays`` conventions: ray ``k`` at angle ``2 pi k / n``), ``exp(x) * stride`` so
    that they start near one cell and stay positive. The head's centre-ness is trained as polar centre-ness and
    its box branch as FCOS's (an auxiliary loss: detections take the boxes of their polygons).

    ``forward(images, targets=None) -> dict`` (P points over the levels, K classes, n rays):
    ``class_logits`` Tensor[B, P, K], ``box_ltrb`` Tensor[B, P, 4], ``centerness_logits`` Tensor[B, P],
    ``rays`` Tensor[B, P, n] (input pixels), ``points`` Tensor[P, 2] ``(x, y)``, ``point_levels`` Tensor[P] int64,
    ``level_sizes`` Tensor[L, 2] int64 ``(H_l, W_l)``.
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: FPN,
        head: FCOSHead,
        criterion: PolarMaskLoss,
        postprocessor: PolarMaskPostprocessor,
        num_classes: int,
        min_size: int | None = 512,
        max_size: int | None = 512,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        self.backbone, self.neck, self.head = backbone, neck, head
        self.criterion, self.postprocessor = criterion, postprocessor
        self.strides = list(neck.feature_strides)

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        levels = list(self.neck(self.backbone(self.normalize(images))).values())
        out = self.head(levels)
        sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in levels]
        points, point_levels = level_points(sizes, self.strides, levels[0].device)
        strides = torch.as_tensor(self.strides, dtype=points.dtype, device=points.device)[point_levels]
        out["rays"] = out.pop("extra").clamp(max=MAX_RAY_LOGIT).exp() * strides[None, :, None]
        level_sizes = torch.tensor(sizes, dtype=torch.int64, device=points.device)
        return {
            **out,
            "points": points,
            "point_levels": point_levels,
            "level_sizes": level_sizes,
        }

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """Weighted ``loss_*`` scalars (see ``PolarMaskLoss``); targets in the resized images' coordinates."""
        return self.criterion(outputs, targets, self.strides)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """Detections at ``images.original_sizes`` (see ``PolarMaskPostprocessor``)."""
        return self.postprocessor(outputs, images)
