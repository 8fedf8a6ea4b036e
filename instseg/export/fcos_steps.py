"""FCOS's detection step (``instseg.heads.FCOSSelector``) for a whole batch in tensor-only form, shared by the
graphs of the FCOS-based methods (CondInst and its kin)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from instseg.export.graph_ops import grouped_top, size_tensor
from instseg.heads import FCOSSelector
from instseg.ops.fcos import decode_ltrb


def fcos_detections(
    selector: FCOSSelector,
    class_logits: Tensor,
    box_ltrb: Tensor,
    centerness_logits: Tensor,
    points: Tensor,
    valid: tuple[Tensor, Tensor],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Image indices, point indices, boxes (clipped to the ``valid`` ``(h, w)`` part of the padded input),
    scores and labels (each Tensor[D]; boxes Tensor[D, 4]) of every image's detections, grouped by image and best
    first within one: ``FCOSSelector`` per image, with the per-image top-k written as ``grouped_top`` and the
    class-wise NMS of different images kept apart by giving each (image, class) pair its own NMS class.

    ``class_logits`` Tensor[B, P, K], ``box_ltrb`` Tensor[B, P, 4], ``centerness_logits`` Tensor[B, P],
    ``points`` Tensor[P, 2].
    """
    probs = class_logits.float().sigmoid()
    num_images, num_classes = size_tensor(probs, 0), probs.shape[2]
    flat = probs.flatten(1)  # [B, P * K]
    images, candidates = (flat > selector.score_threshold).nonzero(as_tuple=True)
    values = flat[images, candidates]
    top = grouped_top(values, images, num_images, selector.pre_nms_top_k)
    images, candidates, values = images[top], candidates[top], values[top]
    idx, labels = candidates // num_classes, candidates % num_classes
    scores = (values * centerness_logits.float()[images, idx].sigmoid()).sqrt()
    boxes = decode_ltrb(points[idx], box_ltrb[images, idx].float())
    h, w = valid
    boxes = torch.minimum(boxes.clamp(min=0.0), torch.stack([w, h, w, h]).float())
    keep = batched_nms(boxes, scores, labels + images * num_classes, selector.nms_iou)
    keep = keep[grouped_top(scores[keep], images[keep], num_images, selector.max_detections)]
    return images[keep], idx[keep], boxes[keep], scores[keep], labels[keep]


def traced_points(level_maps: list[Tensor], strides: list[int]) -> Tensor:
    """``instseg.ops.fcos.level_points`` of pyramid maps Tensor[B, C, H_l, W_l] with their sizes traced."""
    points = []
    for x, s in zip(level_maps, strides, strict=True):
        ys = torch.arange(size_tensor(x, 2), dtype=torch.float32) * s + s // 2  # type: ignore[call-overload]
        xs = torch.arange(size_tensor(x, 3), dtype=torch.float32) * s + s // 2  # type: ignore[call-overload]
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1))
    return torch.cat(points)


def traced_point_values(level_maps: list[Tensor], values: list[float]) -> Tensor:
    """Tensor[P]: ``values[l]`` at every point of level ``l`` (e.g. a per-level scale), with traced sizes."""
    out = [torch.full_like(x[0, 0].flatten(), v) for x, v in zip(level_maps, values, strict=True)]
    return torch.cat(out).float()
