"""Box format conversions; the only place in the package that converts box formats.

Inside instseg a box is ``xyxy`` in absolute pixels with an exclusive right/bottom edge, so a mask
whose pixels span columns ``x0..x1`` (inclusive) has the box ``[x0, y0, x1 + 1, y1 + 1]`` and
``width = x1 - x0 + 1``, exactly as COCO's ``bbox`` (``[x, y, w, h]``) counts it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert COCO ``[x, y, w, h]`` boxes (Tensor[N, 4]) to ``xyxy``."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """Convert ``xyxy`` boxes (Tensor[N, 4]) to COCO ``[x, y, w, h]``."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0, y0, x1 - x0, y1 - y0], dim=-1)


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight ``xyxy`` boxes (Tensor[N, 4], float32) of boolean masks (Tensor[N, H, W]); empty masks give zeros.

    Written with two reductions rather than ``torchvision.ops.masks_to_boxes`` because that one uses an
    inclusive right edge and fails on empty masks, while COCO counts the edge pixel in the width.
    """
    n = masks.shape[0]
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.float32, device=masks.device)
    masks = masks.bool()
    rows = masks.any(dim=2)  # [N, H]
    cols = masks.any(dim=1)  # [N, W]
    h, w = masks.shape[1], masks.shape[2]
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    big = max(h, w) + 1
    y0 = torch.where(rows, ys, big).min(dim=1).values
    y1 = torch.where(rows, ys, -1).max(dim=1).values + 1
    x0 = torch.where(cols, xs, big).min(dim=1).values
    x1 = torch.where(cols, xs, -1).max(dim=1).values + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    empty = ~rows.any(dim=1)
    boxes[empty] = 0.0
    return boxes


def clip_boxes(boxes: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Clip ``xyxy`` boxes (Tensor[N, 4]) to an image of ``(height, width)``."""
    h, w = image_size
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out


def box_area(boxes: Tensor) -> Tensor:
    """Area (Tensor[N]) of ``xyxy`` boxes (Tensor[N, 4]); inverted boxes count as zero."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def scale_boxes(boxes: Tensor, scale_xy: tuple[float, float]) -> Tensor:
    """Scale ``xyxy`` boxes (Tensor[N, 4]) by ``(sx, sy)``, as after resizing the image."""
    sx, sy = scale_xy
    factor = boxes.new_tensor([sx, sy, sx, sy])
    return boxes * factor
