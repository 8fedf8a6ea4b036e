"""Paste box-relative ``R x R`` soft masks (RoI heads: BlendMask, Mask R-CNN-like) into an image as box crops.

Written here rather than with torchvision's ``paste_masks_in_image`` because that one fills a full-frame float
mask per object (N x H x W: hundreds of nuclei on a large image do not fit) and grows each box by one padded
cell; here each mask is sampled only at the pixels whose centres lie inside its box, with the inverse of the
geometry ``roi_align(aligned=True)`` samples boxes with, and comes back as a crop for ``BoxMasks``.
``instseg.ops.masks`` upsamples image-wide grids, not per-box ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def box_pixel_window(box: tuple[float, float, float, float], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer window ``(x0, y0, x1, y1)`` (exclusive ends) of the pixels whose centres ``(x + 0.5, y + 0.5)`` lie
    in ``[bx0, bx1) x [by0, by1)``, clipped to the ``(height, width)`` image."""
    bx0, by0, bx1, by1 = box
    h, w = image_size
    x0, x1 = max(0, math.ceil(bx0 - 0.5)), min(w, math.ceil(bx1 - 0.5))
    y0, y1 = max(0, math.ceil(by0 - 0.5)), min(h, math.ceil(by1 - 0.5))
    return x0, y0, max(x0, x1), max(y0, y1)


def paste_in_boxes(
    probs: Tensor, boxes: Tensor, image_size: tuple[int, int], threshold: float = 0.5
) -> tuple[list[Tensor], list[tuple[int, int]]]:
    """Binary crops (bool Tensor[h_i, w_i]) and their top-left corners ``(x0, y0)`` of soft masks ``probs``
    Tensor[N, R, R] spread over ``boxes`` Tensor[N, 4] (xyxy pixels of the ``(height, width)`` image).

    Pixel ``(x, y)`` of a box's window (``box_pixel_window``) reads its mask bilinearly at
    ``((x + 0.5 - bx0) R / (bx1 - bx0) - 0.5, ...)`` (``grid_sample``, ``align_corners=False``, border values
    repeated) and is on where that exceeds ``threshold``: a mask never leaves its box.
    """
    crops: list[Tensor] = []
    corners: list[tuple[int, int]] = []
    for prob, box in zip(probs, boxes.detach().float().cpu().tolist(), strict=True):
        x0, y0, x1, y1 = box_pixel_window(tuple(box), image_size)  # type: ignore[arg-type]
        corners.append((x0, y0))
        if x1 == x0 or y1 == y0:
            crops.append(torch.zeros((y1 - y0, x1 - x0), dtype=torch.bool, device=probs.device))
            continue
        width, height = max(box[2] - box[0], 1e-6), max(box[3] - box[1], 1e-6)
        xs = (torch.arange(x0, x1, device=probs.device, dtype=torch.float32) + 0.5 - box[0]) / width * 2 - 1
        ys = (torch.arange(y0, y1, device=probs.device, dtype=torch.float32) + 0.5 - box[1]) / height * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)[None]  # [1, h, w, 2] (x, y) in -1..1
        sampled = F.grid_sample(prob[None, None].float(), grid, "bilinear", "border", align_corners=False)
        crops.append(sampled[0, 0] > threshold)
    return crops, corners
