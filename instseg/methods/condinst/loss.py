"""``CondInstLoss``: FCOS's detection losses plus the Dice loss of the dynamic masks of sampled positive points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from instseg.heads import FCOSLoss
from instseg.heads.fcos import DEFAULT_WEIGHTS as FCOS_WEIGHTS
from instseg.methods.condinst.head import DynamicMaskHead
from instseg.ops.fcos import P3_P6_SIZE_RANGES
from instseg.ops.mask_downsampling import area_downsample_masks
from instseg.ops.mask_losses import dice_loss
from instseg.structures import Instances

# the paper's weights: FCOS's three terms and the mask loss, all 1
DEFAULT_WEIGHTS = {**FCOS_WEIGHTS, "loss_mask": 1.0}


class CondInstLoss(nn.Module):
    """CondInst's losses from ``CondInst.forward`` outputs (Tian et al. 2020, Sec. 3.3), targets in resized-image
    coordinates:
      - points are assigned as FCOS does (centre sampling within ``radius`` strides, one size range per level);
      - ``loss_class`` (focal), ``loss_box`` (GIoU) and ``loss_centerness`` (BCE) from ``FCOSLoss``;
      - ``loss_mask``: Dice loss between each positive point's dynamic mask (at stride 4) and its object's mask
        area-averaged to stride 4, averaged over the positives; at most ``max_masks_per_image`` random positives
        per image are used (the paper uses all; the cap bounds memory on crowded images).
    Weights (``DEFAULT_WEIGHTS``) applied here; every output takes part with a zero factor when no image of the
    batch has an object, so that every parameter always gets a gradient.
    """

    def __init__(
        self,
        num_classes: int,
        size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
        radius: float = 1.5,
        max_masks_per_image: int = 100,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown CondInst loss weights {sorted(unknown)}")
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.max_masks_per_image = max_masks_per_image
        fcos_weights = {k: v for k, v in self.weights.items() if k in FCOS_WEIGHTS}
        self.fcos = FCOSLoss(num_classes, size_ranges, radius, fcos_weights)

    def forward(
        self, outputs: dict[str, Tensor], targets: list[Instances], strides: Sequence[int], mask_head: DynamicMaskHead
    ) -> dict[str, Tensor]:
        points, levels, scales = outputs["points"], outputs["point_levels"], outputs["point_scales"]
        features, params = outputs["mask_features"], outputs["mask_params"]  # [B, C, Hm, Wm], [B, P, D]
        if len(targets) != params.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {params.shape[0]} images")
        matched = self.fcos.assign(points, levels, strides, targets)
        losses = self.fcos(outputs, points, matched, targets)
        hm, wm = features.shape[-2:]
        padded = (hm * mask_head.stride, wm * mask_head.stride)
        out_size = (padded[0] // mask_head.out_stride, padded[1] // mask_head.out_stride)
        image_index, positives, gt_masks = [], [], []
        for i, (m, target) in enumerate(zip(matched, targets, strict=True)):
            if target.masks is None:
                raise ValueError(f"target of batch image {i} has no masks; CondInst needs them")
            pos = torch.nonzero(m >= 0).squeeze(1)
            if pos.numel() > self.max_masks_per_image:
                pos = pos[torch.randperm(pos.numel(), device=pos.device)[: self.max_masks_per_image]]
            if pos.numel() == 0:
                continue
            objects, inverse = torch.unique(m[pos], return_inverse=True)  # downsample only the matched objects
            masks = target.masks.to(features.device)[objects]
            gt_masks.append(area_downsample_masks(masks, padded, out_size)[inverse])  # [n, Hm*2, Wm*2] in 0..1
            image_index.append(torch.full_like(pos, i))
            positives.append(pos)
        zero = 0.0 * (params.sum() + features.sum())
        if positives:
            index, pos = torch.cat(image_index), torch.cat(positives)
            logits = mask_head(features, index, points[pos], scales[pos], params[index, pos])
            losses["loss_mask"] = (
                dice_loss(logits, torch.cat(gt_masks), eps=1e-5).mean() * self.weights["loss_mask"] + zero
            )
        else:
            losses["loss_mask"] = zero
        return losses
