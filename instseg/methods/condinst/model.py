"""``CondInst`` (Tian, Shen & Chen 2020): an FCOS detector whose every point also predicts the filters of a tiny
mask FCN, run on shared mask features to segment that point's object."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from instseg.backbones import Backbone
from instseg.heads import FCOSHead
from instseg.methods.condinst.head import DynamicMaskHead, MaskBranch
from instseg.methods.condinst.loss import CondInstLoss
from instseg.methods.condinst.postprocess import CondInstPostprocessor
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.necks import FPN
from instseg.ops.fcos import level_points
from instseg.structures import ImageBatch, Instances


class CondInst(InstanceSegmenter):
    """CondInst: ``FCOSHead`` on an ``FPN`` whose ``extra`` outputs (from the box tower, the paper's "controller"
    beside the box head) are each point's ``DynamicMaskHead`` parameters; a ``MaskBranch`` on the finest level
    gives the mask features those filters read, with coordinates relative to the point divided by
    ``sizes_of_interest[level]`` (one per pyramid level). No RoI crop: the filters themselves single out the object.

    ``forward(images, targets=None) -> dict`` (P points over the levels, K classes, D dynamic parameters, C mask
    feature channels, padded input H x W):
      - ``class_logits`` Tensor[B, P, K] (sigmoid), ``box_ltrb`` Tensor[B, P, 4] (input pixels),
        ``centerness_logits`` Tensor[B, P]: FCOS's outputs;
      - ``mask_params`` Tensor[B, P, D]: each point's dynamic filter weights and biases (``ops.dynamic_conv``);
      - ``mask_features`` Tensor[B, C, H / 8, W / 8];
      - ``points`` Tensor[P, 2] ``(x, y)`` input pixels, ``point_levels`` Tensor[P] int64, ``point_scales`` Tensor[P]
        (the relative-coordinate divisor of each point).
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: FPN,
        head: FCOSHead,
        mask_branch: MaskBranch,
        mask_head: DynamicMaskHead,
        criterion: CondInstLoss,
        postprocessor: CondInstPostprocessor,
        num_classes: int,
        sizes_of_interest: Sequence[float],
        min_size: int | None = 800,
        max_size: int | None = 1333,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        self.strides = list(neck.feature_strides)
        if len(sizes_of_interest) != len(self.strides):
            raise ValueError(f"sizes_of_interest needs one entry per level, got {len(sizes_of_interest)}")
        if head.extra_outputs != mask_head.num_params:
            raise ValueError(
                f"the head predicts {head.extra_outputs} parameters, the mask head needs {mask_head.num_params}"
            )
        if mask_head.stride != self.strides[0]:
            raise ValueError(f"the mask head reads stride {mask_head.stride}, the finest level is {self.strides[0]}")
        self.backbone, self.neck, self.head = backbone, neck, head
        self.mask_branch, self.mask_head = mask_branch, mask_head
        self.criterion, self.postprocessor = criterion, postprocessor
        self.sizes_of_interest = [float(s) for s in sizes_of_interest]

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        levels = list(self.neck(self.backbone(self.normalize(images))).values())  # P3..: [B, C, H/s, W/s]
        out = self.head(levels)
        sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in levels]
        points, point_levels = level_points(sizes, self.strides, levels[0].device)
        scales = torch.as_tensor(self.sizes_of_interest, dtype=points.dtype, device=points.device)[point_levels]
        return {
            "class_logits": out["class_logits"],
            "box_ltrb": out["box_ltrb"],
            "centerness_logits": out["centerness_logits"],
            "mask_params": out["extra"],
            "mask_features": self.mask_branch(levels[0]),
            "points": points,
            "point_levels": point_levels,
            "point_scales": scales,
        }

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """Weighted ``loss_*`` scalars (see ``CondInstLoss``); targets in the resized images' coordinates."""
        return self.criterion(outputs, targets, self.strides, self.mask_head)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """Detections at ``images.original_sizes`` (see ``CondInstPostprocessor``)."""
        return self.postprocessor(outputs, images, self.mask_head)
