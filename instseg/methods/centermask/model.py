"""``CenterMask`` (Lee & Park, 2020): the anchor-free FCOS detector, then a spatial attention-guided mask head
on RoIAligned features of each detected box."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torchvision.models.detection.roi_heads import maskrcnn_loss
from torchvision.ops import MultiScaleRoIAlign

from instseg.backbones import Backbone
from instseg.heads import FCOSHead, FCOSLoss, FCOSSelector
from instseg.methods.centermask.head import SpatialAttentionMaskHead
from instseg.methods.centermask.regions import training_regions
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD, InstanceSegmenter
from instseg.methods.two_stage_segmenter import paste_region_masks, weighted_losses
from instseg.necks import FPN
from instseg.ops.fcos import level_points
from instseg.structures import ImageBatch, Instances

LOSS_NAMES = ("loss_class", "loss_box", "loss_centerness", "loss_mask")


class CenterMask(InstanceSegmenter):
    """CenterMask: ``FCOSHead`` on an ``FPN`` (P3 up), then ``SpatialAttentionMaskHead`` on each box RoIAligned
    from the level its size picks (``mask_pool``: torchvision's ``MultiScaleRoIAlign``, Mask R-CNN's level rule).

    Anchor-free detection suits crowded small objects: a point inside a nucleus detects it, with no anchor shape
    to match and no IoU-based assignment for objects that touch; the spatial attention damps a neighbour's pixels
    inside the box. The paper's MaskIoU scoring branch is not built (scores are FCOS's).

    ``forward(images, targets)`` (``targets`` in the coordinates of ``images.image_sizes``):
      - training: ``{"loss_class", "loss_box", "loss_centerness"}`` from ``FCOSLoss`` and ``loss_mask`` (BCE of the
        regions of ``training_regions`` against their objects' masks, torchvision's ``maskrcnn_loss``), unweighted;
      - eval: the batch's detections, image after image (D in total): ``boxes`` Tensor[D, 4] (resized-image
        pixels), ``scores`` Tensor[D], ``labels`` Tensor[D] int64 (0..K-1), ``mask_probs`` Tensor[D, 1, M, M]
        (the predicted class's mask, M = 2 x the RoI size), ``num_detections`` Tensor[B] int64.
    ``loss`` applies ``loss_weights`` (``fcos_loss`` is built unweighted); ``postprocess`` is
    ``paste_region_masks``, as for the two-stage models.
    """

    def __init__(
        self,
        backbone: Backbone,
        neck: FPN,
        head: FCOSHead,
        fcos_loss: FCOSLoss,
        selector: FCOSSelector,
        mask_pool: MultiScaleRoIAlign,
        mask_head: SpatialAttentionMaskHead,
        num_classes: int,
        max_masks_per_image: int = 100,
        min_size: int | None = 800,
        max_size: int | None = 1333,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        mask_threshold: float = 0.5,
        loss_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(num_classes, pixel_mean, pixel_std, min_size, max_size, size_divisibility=32)
        self.backbone, self.neck, self.head = backbone, neck, head
        self.fcos_loss, self.selector = fcos_loss, selector
        self.mask_pool, self.mask_head = mask_pool, mask_head
        self.strides = list(neck.feature_strides)
        self.max_masks_per_image = max_masks_per_image
        self.mask_threshold = mask_threshold
        unknown = set(loss_weights or {}) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"unknown CenterMask loss weights {sorted(unknown)}; known: {list(LOSS_NAMES)}")
        self.loss_weights = dict(loss_weights or {})

    def forward(self, images: ImageBatch, targets: list[Instances] | None = None) -> dict[str, Tensor]:
        """Losses (training) or the batch's detections with RoI masks (eval); see the class docstring."""
        if self.training and targets is None:
            raise ValueError("CenterMask.forward needs targets in training mode")
        pyramid = self.neck(self.backbone(self.normalize(images)))  # P3..: [B, C, H/s, W/s]
        levels = list(pyramid.values())
        out = self.head(levels)
        sizes = [(int(x.shape[-2]), int(x.shape[-1])) for x in levels]
        points, point_levels = level_points(sizes, self.strides, levels[0].device)
        shapes = [(int(h), int(w)) for h, w in images.image_sizes]
        if self.training:
            assert targets is not None
            return self._losses(out, pyramid, points, point_levels, shapes, targets)
        return self._detect(out, pyramid, points, shapes)

    def _losses(
        self,
        out: dict[str, Tensor],
        pyramid: OrderedDict[str, Tensor],
        points: Tensor,
        point_levels: Tensor,
        shapes: list[tuple[int, int]],
        targets: list[Instances],
    ) -> dict[str, Tensor]:
        if len(targets) != len(shapes):
            raise ValueError(f"{len(targets)} targets for a batch of {len(shapes)} images")
        for i, target in enumerate(targets):
            if target.masks is None:
                raise ValueError(f"target of batch image {i} has no masks; CenterMask needs them")
        matched = self.fcos_loss.assign(points, point_levels, self.strides, targets)
        losses = self.fcos_loss(out, points, matched, targets)
        regions, owners = zip(
            *(
                training_regions(points, out["box_ltrb"][i], m, t, self.max_masks_per_image)
                for i, (m, t) in enumerate(zip(matched, targets, strict=True))
            ),
            strict=True,
        )
        logits = self.mask_head(self.mask_pool(pyramid, list(regions), shapes))  # [R, K, M, M]
        device = logits.device
        losses["loss_mask"] = maskrcnn_loss(
            logits,
            list(regions),
            [t.masks.to(device) for t in targets],  # type: ignore[union-attr]
            [t.labels.to(device) for t in targets],
            list(owners),
        )
        return losses

    def _detect(
        self, out: dict[str, Tensor], pyramid: OrderedDict[str, Tensor], points: Tensor, shapes: list[tuple[int, int]]
    ) -> dict[str, Tensor]:
        boxes, scores, labels = [], [], []
        for i, shape in enumerate(shapes):
            _, b, s, lab = self.selector(
                out["class_logits"][i], out["box_ltrb"][i], out["centerness_logits"][i], points, shape
            )
            boxes.append(b)
            scores.append(s)
            labels.append(lab)
        label = torch.cat(labels)
        logits = self.mask_head(self.mask_pool(pyramid, boxes, shapes))  # [D, K, M, M]
        probs = logits[torch.arange(len(label), device=label.device), label].sigmoid()[:, None]
        return {
            "boxes": torch.cat(boxes),
            "scores": torch.cat(scores),
            "labels": label,
            "mask_probs": probs,
            "num_detections": torch.tensor([len(b) for b in boxes], dtype=torch.int64, device=label.device),
        }

    def loss(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        """The weighted ``loss_*`` scalars computed inside ``forward`` (the mask head's regions come from the
        detector's outputs and the targets together); ``targets`` is unused."""
        return weighted_losses(outputs, self.loss_weights)

    def postprocess(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        """One ``Instances`` per image at ``images.original_sizes`` (``paste_region_masks``)."""
        return paste_region_masks(outputs, images, self.mask_threshold)
