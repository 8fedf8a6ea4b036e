"""``BlendMaskLoss``: FCOS's detection losses and the per-pixel BCE of the blended masks over ground-truth boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from instseg.heads import FCOSLoss
from instseg.ops.blender import blend
from instseg.ops.fcos import P3_P6_SIZE_RANGES
from instseg.structures import Instances

DEFAULT_WEIGHTS = {"loss_class": 1.0, "loss_box": 1.0, "loss_centerness": 1.0, "loss_mask": 1.0}


def box_mask_targets(masks: Tensor, boxes: Tensor, object_index: Tensor, resolution: int) -> Tensor:
    """Tensor[n, R, R] in 0..1: the ground-truth ``masks`` Tensor[N, H, W] of objects ``object_index`` Tensor[n]
    cropped to ``boxes`` Tensor[n, 4] and resized to ``R x R`` (``roi_align``, ``aligned=True``, adaptive sampling:
    the fraction of each bin the object covers), on the grid ``instseg.ops.blender.crop_bases`` reads."""
    if object_index.numel() == 0:
        return masks.new_zeros((0, resolution, resolution), dtype=torch.float32)
    rois = torch.cat([object_index.to(boxes.dtype)[:, None], boxes], dim=1).float()
    return roi_align(masks[:, None].float(), rois, resolution, 1.0, sampling_ratio=-1, aligned=True)[:, 0]


class BlendMaskLoss(nn.Module):
    """BlendMask's losses from ``BlendMask.forward`` outputs and targets (resized-image coordinates):
      - ``loss_class``, ``loss_box``, ``loss_centerness``: FCOS's (``instseg.heads.FCOSLoss``, box centres,
        centre sampling of ``radius`` strides, one ``size_ranges`` entry per level);
      - ``loss_mask``: per positive point (at most ``max_masks_per_image`` random ones per image), its attentions
        blend the bases over its object's **ground-truth** box (as the paper trains, so the mask branch never
        learns from poor early boxes) into ``R x R`` logits, against the object's mask cropped and resized to the
        same grid (``box_mask_targets``, soft at the edges); BCE averaged over the pixels and masks.
    Weights (``DEFAULT_WEIGHTS``) applied here; the bases and attentions take part with a zero factor when a batch
    has no object, so that every parameter always gets a gradient.
    """

    def __init__(
        self,
        num_classes: int,
        resolution: int = 56,
        basis_stride: int = 4,
        size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
        radius: float = 1.5,
        max_masks_per_image: int = 100,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown BlendMask loss weights {sorted(unknown)}")
        self.resolution, self.basis_stride = resolution, basis_stride
        self.max_masks_per_image = max_masks_per_image
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.fcos = FCOSLoss(num_classes, size_ranges, radius)

    def forward(
        self, outputs: Mapping[str, Tensor], targets: Sequence[Instances], strides: Sequence[int]
    ) -> dict[str, Tensor]:
        points, bases, attentions = outputs["points"], outputs["bases"], outputs["attentions"]
        if len(targets) != bases.shape[0]:
            raise ValueError(f"BlendMask loss: {len(targets)} targets for a batch of {bases.shape[0]} images")
        matched = self.fcos.assign(points, outputs["point_levels"], strides, targets)
        losses = self.fcos(outputs, points, matched, targets)
        boxes, image_index, attention, mask_targets = [], [], [], []
        for i, (m, target) in enumerate(zip(matched, targets, strict=True)):
            pos = torch.nonzero(m >= 0).squeeze(1)
            if pos.numel() == 0:
                continue
            if target.masks is None:
                raise ValueError(f"BlendMask loss: target of batch image {i} has no masks; BlendMask needs them")
            if pos.numel() > self.max_masks_per_image:
                pos = pos[torch.randperm(pos.numel(), device=pos.device)[: self.max_masks_per_image]]
            gt = m[pos]
            gt_boxes = target.boxes.to(bases.device)[gt]
            boxes.append(gt_boxes)
            image_index.append(torch.full_like(gt, i))
            attention.append(attentions[i, pos])
            mask_targets.append(box_mask_targets(target.masks.to(bases.device), gt_boxes, gt, self.resolution))
        zero = 0.0 * (bases.sum() + attentions.sum())
        if boxes:
            logits = blend(
                bases,
                torch.cat(boxes),
                torch.cat(image_index),
                torch.cat(attention),
                self.resolution,
                self.basis_stride,
            )
            losses["loss_mask"] = F.binary_cross_entropy_with_logits(logits, torch.cat(mask_targets)) + zero
        else:
            losses["loss_mask"] = zero
        return {k: v * self.weights[k] for k, v in losses.items()}
