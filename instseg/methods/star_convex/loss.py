"""``StarConvexLoss``: BCE on the object probability, probability-weighted L1 on the ray distances (StarDist)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.ops.instance_maps import batch_class_maps, batch_distance_maps, batch_label_maps
from instseg.ops.polar_rays import ray_distances
from instseg.structures import Instances


class StarConvexLoss(nn.Module):
    """Losses of the star-convex model (Schmidt et al. 2018), targets built on the fly from ``Instances`` masks.

    - ``loss_prob``: binary cross-entropy between ``prob_logits`` and each object's normalised distance transform
      (``instseg.ops.instance_maps.normalized_distance_map``: 1 at the centre, falling to the edge), as in the
      paper: pixels near an object's centre, whose polygons are the most reliable, get the highest scores;
    - ``loss_distance``: L1 between predicted and true ray distances (``instseg.ops.polar_rays.ray_distances``,
      exact on the pixel grid), weighted by that target probability and averaged over the weights and rays: the
      centre pixels, which NMS keeps, matter most and background pixels not at all. It is evaluated on the pixels
      ``(target_stride * i, target_stride * j)`` only, an unbiased sample that makes the ray walks
      ``target_stride ** 2`` times cheaper (the paper predicts the distances on such a grid);
    - ``loss_class``: per-pixel cross-entropy on object pixels (only with ``class_logits``).
    Padding pixels of the batch never count; a ray ends where it leaves the image (padding is background).
    """

    def __init__(
        self,
        prob_weight: float = 1.0,
        distance_weight: float = 0.2,
        class_weight: float = 1.0,
        target_stride: int = 2,
    ) -> None:
        super().__init__()
        if target_stride < 1:
            raise ValueError(f"target_stride must be >= 1, got {target_stride}")
        self.prob_weight = prob_weight
        self.distance_weight = distance_weight
        self.class_weight = class_weight
        self.target_stride = target_stride

    def forward(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        prob_logits, distances = outputs["prob_logits"], outputs["distances"]  # [B, 1, H, W], [B, n, H, W]
        if len(targets) != prob_logits.shape[0]:
            raise ValueError(f"{len(targets)} targets for a batch of {prob_logits.shape[0]} images")
        device = prob_logits.device
        label_maps, valid_maps = batch_label_maps([t.to(device) for t in targets], prob_logits.shape[-2:])
        valid = valid_maps.unsqueeze(1).float()  # [B, 1, H, W]
        prob_target = batch_distance_maps(label_maps).unsqueeze(1)  # [B, 1, H, W]
        bce = F.binary_cross_entropy_with_logits(prob_logits, prob_target, reduction="none")
        loss_prob = (bce * valid).sum() / valid.sum().clamp(min=1.0)

        s = self.target_stride
        n_rays = distances.shape[1]
        ray_target = torch.stack([ray_distances(m, n_rays, s) for m in label_maps]).to(device)  # [B, n, H', W']
        weight = (prob_target * valid)[:, :, ::s, ::s]  # [B, 1, H', W']
        l1 = (distances[:, :, ::s, ::s] - ray_target).abs()
        loss_distance = (l1 * weight).sum() / (weight.sum() * n_rays).clamp(min=1.0)

        losses = {"loss_prob": self.prob_weight * loss_prob, "loss_distance": self.distance_weight * loss_distance}
        if "class_logits" in outputs:
            classes = batch_class_maps(label_maps, valid_maps, targets)  # [B, H, W], -100 = ignore
            ce = F.cross_entropy(outputs["class_logits"], classes, ignore_index=-100, reduction="sum")
            losses["loss_class"] = self.class_weight * ce / (classes >= 0).sum().clamp(min=1)
        return losses
