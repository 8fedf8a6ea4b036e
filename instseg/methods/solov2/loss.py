"""SOLOv2 targets (centre-region assignment of objects to grid cells) and losses (focal + Dice)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from instseg.ops.mask_downsampling import area_downsample_masks
from instseg.ops.mask_losses import dice_loss
from instseg.structures import Instances

# the paper's instance-scale ranges (sqrt of box area, in pixels) for images resized to a short side of 800
PAPER_SCALE_RANGES = ((1.0, 96.0), (48.0, 192.0), (96.0, 384.0), (192.0, 768.0), (384.0, 2048.0))
PAPER_NUM_GRIDS = (40, 36, 24, 16, 12)


def default_scale_ranges(
    min_size: int | None, max_size: int | None, num_levels: int = 5
) -> tuple[tuple[float, float], ...]:
    """The paper's scale ranges scaled to the input size (short side ``min_size``, else ~0.6 x ``max_size``).

    The first level starts at 0 and the last one is open, so that every object is assigned somewhere.
    """
    short = float(min_size) if min_size is not None else (0.6 * max_size if max_size is not None else 800.0)
    factor = short / 800.0
    if num_levels != len(PAPER_SCALE_RANGES):
        raise ValueError(f"methods/solov2/loss.py: default scale ranges exist for 5 levels, got {num_levels}")
    ranges = [(lo * factor, hi * factor) for lo, hi in PAPER_SCALE_RANGES]
    ranges[0] = (0.0, ranges[0][1])
    ranges[-1] = (ranges[-1][0], float("inf"))
    return tuple(ranges)


@dataclass
class GridTargets:
    """One image's targets over all grid cells (G = sum S_l^2, in the head's order).

    ``labels`` Tensor[G] int64 (class, -1 = background); ``gt_index`` Tensor[G] int64 (which object the cell
    predicts, -1 = none); ``masks`` Tensor[N, h, w] float (0/1), every object's mask at the mask-feature scale.
    """

    labels: Tensor
    gt_index: Tensor
    masks: Tensor


def mass_centers(masks: Tensor) -> Tensor:
    """Centre of mass ``(y, x)`` in pixel-centre coordinates (Tensor[N, 2]) of boolean masks Tensor[N, H, W]."""
    h, w = masks.shape[-2:]
    rows = masks.sum(dim=2, dtype=torch.float32)  # [N, H]
    cols = masks.sum(dim=1, dtype=torch.float32)  # [N, W]
    area = rows.sum(dim=1).clamp(min=1.0)
    ys = torch.arange(h, dtype=torch.float32, device=masks.device) + 0.5
    xs = torch.arange(w, dtype=torch.float32, device=masks.device) + 0.5
    return torch.stack([(rows * ys).sum(1) / area, (cols * xs).sum(1) / area], dim=1)


def assign_grid_cells(
    target: Instances,
    padded_size: tuple[int, int],
    num_grids: Sequence[int],
    scale_ranges: Sequence[tuple[float, float]],
    center_sampling: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """Grid cells each object is assigned to: ``(labels, gt_index)``, both Tensor[G] int64, -1 for background.

    An object goes to every level whose ``scale_ranges`` entry contains sqrt(box width x box height) (bounds
    included). On such a level of S x S cells covering the padded image, the cells it owns are those under its
    centre region -- its box scaled by ``center_sampling`` around its centre of mass -- kept within the 3 x 3
    cells around the centre cell. Larger objects are written first, so a smaller object wins a shared cell.
    """
    pad_h, pad_w = padded_size
    total = sum(s * s for s in num_grids)
    labels = torch.full((total,), -1, dtype=torch.int64)
    gt_index = torch.full((total,), -1, dtype=torch.int64)
    if len(target) == 0:
        return labels, gt_index
    assert target.masks is not None
    masks = target.masks.to("cpu")
    boxes = target.boxes.to("cpu", torch.float32)
    box_w, box_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    scales = (box_w * box_h).sqrt()
    centers = mass_centers(masks)
    nonempty = masks.flatten(1).any(dim=1)
    order = torch.argsort(scales, descending=True, stable=True).tolist()
    rows = list(
        zip(scales.tolist(), centers.tolist(), box_w.tolist(), box_h.tolist(), target.labels.tolist(), strict=True)
    )
    offset = 0
    for s, (lo, hi) in zip(num_grids, scale_ranges, strict=True):
        cell_h, cell_w = pad_h / s, pad_w / s
        for k in order:
            scale, (cy, cx), bw, bh, label = rows[k]
            if not (nonempty[k] and lo <= scale <= hi):
                continue
            half_h, half_w = 0.5 * bh * center_sampling, 0.5 * bw * center_sampling
            ci, cj = min(int(cy / cell_h), s - 1), min(int(cx / cell_w), s - 1)
            top = max(0, int((cy - half_h) / cell_h), ci - 1)
            bottom = min(s - 1, int((cy + half_h) / cell_h), ci + 1)
            left = max(0, int((cx - half_w) / cell_w), cj - 1)
            right = min(s - 1, int((cx + half_w) / cell_w), cj + 1)
            cells = torch.arange(top, bottom + 1)[:, None] * s + torch.arange(left, right + 1)[None, :] + offset
            labels[cells.flatten()] = label
            gt_index[cells.flatten()] = k
        offset += s * s
    return labels, gt_index


def downsample_masks(masks: Tensor, padded_size: tuple[int, int], stride: int) -> Tensor:
    """Masks Tensor[N, h, w] (bool, top-left of the padded image) area-averaged by ``stride`` and thresholded at
    0.5: float 0/1 Tensor[N, H / stride, W / stride]."""
    size = (padded_size[0] // stride, padded_size[1] // stride)
    return (area_downsample_masks(masks, padded_size, size) >= 0.5).float()


class SOLOv2Loss(nn.Module):
    """``loss_cls``: sigmoid focal loss over every grid cell, summed and divided by (positives + 1);
    ``loss_mask``: mean Dice loss of the positive cells' dynamic masks against their object's mask at the
    mask-feature scale (x ``mask_weight``, 3 in the paper). Cells whose object is assigned to them are positives.
    """

    def __init__(
        self,
        num_classes: int,
        num_grids: Sequence[int],
        scale_ranges: Sequence[tuple[float, float]],
        mask_stride: int = 4,
        center_sampling: float = 0.2,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        cls_weight: float = 1.0,
        mask_weight: float = 3.0,
    ) -> None:
        super().__init__()
        if len(num_grids) != len(scale_ranges):
            raise ValueError(
                f"methods/solov2/loss.py: {len(num_grids)} grids but {len(scale_ranges)} scale ranges; one per level"
            )
        self.num_classes = num_classes
        self.num_grids = [int(s) for s in num_grids]
        self.scale_ranges = [(float(lo), float(hi)) for lo, hi in scale_ranges]
        self.mask_stride = mask_stride
        self.center_sampling = center_sampling
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.cls_weight = cls_weight
        self.mask_weight = mask_weight

    def targets(self, target: Instances, padded_size: tuple[int, int]) -> GridTargets:
        """Grid labels / object indices and the objects' masks at the mask-feature scale for one image."""
        labels, gt_index = assign_grid_cells(
            target, padded_size, self.num_grids, self.scale_ranges, self.center_sampling
        )
        if len(target) and target.masks is None:
            raise ValueError("methods/solov2/loss.py: SOLOv2 targets need masks")
        masks = target.masks if target.masks is not None else torch.zeros((0, *target.image_size), dtype=torch.bool)
        return GridTargets(labels, gt_index, downsample_masks(masks, padded_size, self.mask_stride))

    def forward(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        cls_logits, kernels, features = outputs["cls_logits"], outputs["kernels"], outputs["mask_features"]
        b, _, k = cls_logits.shape  # [B, G, K]
        if len(targets) != b:
            raise ValueError(f"methods/solov2/loss.py: {len(targets)} targets for a batch of {b} images")
        if any(len(t) and (int(t.labels.min()) < 0 or int(t.labels.max()) >= k) for t in targets):
            raise ValueError(f"methods/solov2/loss.py: target labels must be in 0..{k - 1}")
        padded = (features.shape[-2] * self.mask_stride, features.shape[-1] * self.mask_stride)
        device = cls_logits.device
        cls_target = torch.zeros_like(cls_logits)
        dice_terms = []
        for i, target in enumerate(targets):
            grid = self.targets(target, padded)
            positive = (grid.gt_index >= 0).nonzero().flatten()
            cls_target[i, positive.to(device), grid.labels[positive].to(device)] = 1.0
            if len(positive) == 0:
                continue
            pos_kernels = kernels[i, positive.to(device)]  # [P, E]
            mask_logits = torch.einsum("pe,ehw->phw", pos_kernels, features[i])  # [P, H/4, W/4]
            mask_targets = grid.masks.to(device)[grid.gt_index[positive].to(device)]
            dice_terms.append(dice_loss(mask_logits, mask_targets))
        num_pos = int(cls_target.sum().item())
        focal = sigmoid_focal_loss(cls_logits, cls_target, self.focal_alpha, self.focal_gamma, reduction="sum")
        loss_cls = focal / (num_pos + 1)
        # zero-valued terms keep every branch in the graph when a batch has no object (DDP needs all gradients)
        touch = 0.0 * (kernels.sum() + features.sum())
        loss_mask = torch.cat(dice_terms).mean() + touch if dice_terms else touch
        return {"loss_cls": self.cls_weight * loss_cls, "loss_mask": self.mask_weight * loss_mask}
