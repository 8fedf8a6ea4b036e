"""``PolarMaskLoss``: FCOS's classification and box losses, polar centre-ness, and the polar IoU loss of the rays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.heads import FCOSLoss
from instseg.ops.fcos import P3_P6_SIZE_RANGES
from instseg.ops.instance_maps import batch_label_maps
from instseg.ops.polar_rays import polar_centerness, polar_iou_loss, ray_distances
from instseg.structures import Instances

DEFAULT_WEIGHTS = {"loss_class": 1.0, "loss_box": 1.0, "loss_centerness": 1.0, "loss_rays": 1.0}


def point_rays(
    label_map: Tensor, sizes: Sequence[tuple[int, int]], strides: Sequence[int], n_rays: int
) -> tuple[Tensor, Tensor]:
    """Tensor[P, n] exact ray lengths at every pyramid point (``level_points`` order) from its pixel to where it
    leaves its object in ``label_map`` Tensor[H, W] (0 on background points), and the label under each point,
    Tensor[P]: the targets of the points on objects (``instseg.ops.polar_rays.ray_distances``)."""
    rays, labels = [], []
    for (h, w), s in zip(sizes, strides, strict=True):
        # the level's points are the pixels (s * i + s // 2, s * j + s // 2): padding the top and left by
        # s - s // 2 background pixels puts them on the stride-s grid (cell i + 1) with the whole image around
        pad = s - s // 2
        padded = F.pad(label_map, (pad, 0, pad, 0))
        grid = ray_distances(padded, n_rays, s)[:, 1 : h + 1, 1 : w + 1]  # [n, <=h, <=w]: the map may end early
        lab = padded[s::s, s::s][:h, :w]
        full = grid.new_zeros((n_rays, h, w))
        full[:, : grid.shape[1], : grid.shape[2]] = grid
        lab_full = lab.new_zeros((h, w))
        lab_full[: lab.shape[0], : lab.shape[1]] = lab
        rays.append(full.flatten(1).T)
        labels.append(lab_full.flatten())
    return torch.cat(rays), torch.cat(labels)


class PolarMaskLoss(nn.Module):
    """PolarMask's losses from ``PolarMask.forward`` outputs (Xie et al. 2020, Sec. 3):
      - points are assigned as FCOS does with centre sampling around each object's **mass centre**, and only
        points on the object itself (its pixels in the batch's label map) are positive;
      - ``loss_class`` (focal) and ``loss_box`` (GIoU, an auxiliary that trains the box branch) from ``FCOSLoss``;
      - ``loss_centerness``: BCE of the centre-ness logits against polar centre-ness ``sqrt(min d / max d)`` of the
        positives' true rays, over the positives (replaces FCOS's box centre-ness);
      - ``loss_rays``: the polar IoU loss ``log(sum max / sum min)`` of predicted and true ray lengths, averaged
        over the positives (the true rays are exact on the pixel grid: ``point_rays``).
    Weights (``DEFAULT_WEIGHTS``) applied here.
    """

    def __init__(
        self,
        num_classes: int,
        n_rays: int = 36,
        size_ranges: Sequence[tuple[float, float]] = P3_P6_SIZE_RANGES,
        radius: float = 1.5,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(weights or {}) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ValueError(f"methods/polarmask/loss.py: unknown loss weights {sorted(unknown)}")
        self.n_rays = n_rays
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.fcos = FCOSLoss(num_classes, size_ranges, radius, {"loss_centerness": 0.0})

    def forward(
        self, outputs: dict[str, Tensor], targets: list[Instances], strides: Sequence[int]
    ) -> dict[str, Tensor]:
        points, levels, rays = outputs["points"], outputs["point_levels"], outputs["rays"]
        sizes = [(int(h), int(w)) for h, w in outputs["level_sizes"].tolist()]
        padded = (sizes[0][0] * strides[0], sizes[0][1] * strides[0])
        label_maps, _ = batch_label_maps(targets, padded)  # [B, H, W], object j of image i is j + 1
        centres, inside, true_rays = [], [], []
        for label_map, target in zip(label_maps.to(points.device), targets, strict=True):
            r, lab = point_rays(label_map, sizes, strides, self.n_rays)
            true_rays.append(r)
            inside.append(lab[:, None] == torch.arange(1, len(target) + 1, device=points.device)[None])
            centres.append(mass_centres(label_map, len(target)))
        matched = self.fcos.assign(points, levels, strides, targets, centres, inside)
        losses = self.fcos(outputs, points, matched, targets)
        losses.pop("loss_centerness")
        pred, true, ctr = [], [], []
        for i, m in enumerate(matched):
            pos = torch.nonzero((m >= 0) & (true_rays[i].amin(1) > 0)).squeeze(1)
            pred.append(rays[i, pos])
            true.append(true_rays[i][pos])
            ctr.append(outputs["centerness_logits"][i, pos])
        zero = 0.0 * (rays.sum() + outputs["centerness_logits"].sum())
        pred_rays, target_rays = torch.cat(pred), torch.cat(true)
        if len(pred_rays):
            losses["loss_rays"] = polar_iou_loss(pred_rays, target_rays).mean() + zero
            target_ctr = polar_centerness(target_rays)
            losses["loss_centerness"] = F.binary_cross_entropy_with_logits(torch.cat(ctr), target_ctr) + zero
        else:
            losses["loss_rays"], losses["loss_centerness"] = zero, zero
        return {k: v * self.weights[k] for k, v in losses.items()}


def mass_centres(label_map: Tensor, n: int) -> Tensor:
    """Tensor[n, 2] ``(x, y)``: the mean pixel of objects ``1..n`` of ``label_map`` Tensor[H, W] (PolarMask's
    centre, inside most round objects; an object without pixels gets ``(0, 0)``)."""
    h, w = label_map.shape
    flat = label_map.flatten()
    ys = torch.arange(h, device=flat.device, dtype=torch.float64).repeat_interleave(w)
    xs = torch.arange(w, device=flat.device, dtype=torch.float64).repeat(h)
    area = torch.bincount(flat, minlength=n + 1)[1 : n + 1].clamp(min=1).double()
    cx = torch.bincount(flat, xs, minlength=n + 1)[1 : n + 1] / area
    cy = torch.bincount(flat, ys, minlength=n + 1)[1 : n + 1] / area
    return torch.stack([cx, cy], dim=1).float()
