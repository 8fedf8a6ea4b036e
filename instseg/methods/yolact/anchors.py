"""YOLACT anchors (one size per pyramid level, several aspect ratios) and their matching to ground-truth boxes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.models.detection._utils import Matcher
from torchvision.ops import box_iou

# YOLACT's sizes at 550 px input for P3..P7 (stride 8..128): three times the stride
DEFAULT_ANCHOR_SIZES = (24, 48, 96, 192, 384)
# YOLACT++ adds scale multipliers within a level (as RetinaNet does)
YOLACTPP_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))


class AnchorGrid:
    """Anchors centred on every cell of every pyramid level.

    Level ``l`` has ``len(scales) * len(aspect_ratios)`` anchors per cell, of width ``size * scale * sqrt(ratio)``
    and height ``size * scale / sqrt(ratio)`` (ratio = width / height), centred at ``((x + 0.5) s, (y + 0.5) s)``
    for stride ``s``. The order is level, row, column, anchor: the order in which the prediction head flattens its
    ``[B, A * C, H, W]`` maps. Written here rather than with torchvision's ``AnchorGenerator`` because that one
    puts anchor centres on cell corners and needs an ``ImageList``.
    """

    def __init__(
        self,
        sizes: Sequence[float],
        aspect_ratios: Sequence[float] = (1.0, 0.5, 2.0),
        scales: Sequence[float] = (1.0,),
    ) -> None:
        if not sizes or min(sizes) <= 0 or not aspect_ratios or min(aspect_ratios) <= 0 or min(scales) <= 0:
            raise ValueError("methods/yolact/anchors.py: anchor sizes, aspect ratios and scales must be positive")
        self.sizes = [float(s) for s in sizes]
        self.aspect_ratios = [float(r) for r in aspect_ratios]
        self.scales = [float(s) for s in scales]

    @property
    def num_anchors(self) -> int:
        """Anchors per feature-map cell."""
        return len(self.scales) * len(self.aspect_ratios)

    def cell_anchors(self, size: float) -> Tensor:
        """Widths and heights (Tensor[A, 2]) of the anchors of one cell at base ``size``."""
        wh = [(size * s * math.sqrt(r), size * s / math.sqrt(r)) for s in self.scales for r in self.aspect_ratios]
        return torch.tensor(wh, dtype=torch.float32)

    def __call__(self, shapes: Sequence[tuple[int, int]], strides: Sequence[int], device: torch.device) -> Tensor:
        """All anchors (Tensor[sum_l H_l W_l A, 4], xyxy input pixels) for feature maps of ``shapes``."""
        if len(shapes) != len(self.sizes) or len(strides) != len(self.sizes):
            raise ValueError(
                f"methods/yolact/anchors.py: {len(self.sizes)} anchor sizes for {len(shapes)} pyramid levels"
            )
        out = []
        for (h, w), stride, size in zip(shapes, strides, self.sizes, strict=True):
            ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
            xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
            cy, cx = torch.meshgrid(ys, xs, indexing="ij")
            centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2)  # [HW, 1, 2]
            half = self.cell_anchors(size).to(device)[None] / 2  # [1, A, 2]
            out.append(torch.cat([centres - half, centres + half], dim=-1).reshape(-1, 4))
        return torch.cat(out)


def match_anchors(
    anchors: Tensor, gt_boxes: Tensor, pos_iou: float = 0.5, neg_iou: float = 0.4
) -> tuple[Tensor, Tensor]:
    """Assign each anchor (Tensor[A, 4]) to a ground-truth box (Tensor[N, 4]) by IoU.

    Returns ``matched`` Tensor[A] int64 (index of the assigned box, valid where ``state == 1``) and ``state``
    Tensor[A] int64: 1 positive (IoU >= ``pos_iou``), 0 negative (IoU < ``neg_iou``), -1 ignored (in between).
    Every box also claims its best anchors, so that small objects are never left without a positive
    (torchvision's ``Matcher`` with low-quality matches, as YOLACT's reference training does).
    """
    num = anchors.shape[0]
    if gt_boxes.shape[0] == 0:
        zeros = torch.zeros(num, dtype=torch.int64, device=anchors.device)
        return zeros, zeros.clone()
    matcher = Matcher(pos_iou, neg_iou, allow_low_quality_matches=True)
    idx = matcher(box_iou(gt_boxes.float(), anchors))  # [A]: box index, -1 below neg_iou, -2 in between
    state = torch.where(idx >= 0, 1, torch.where(idx == Matcher.BELOW_LOW_THRESHOLD, 0, -1))
    return idx.clamp(min=0), state
