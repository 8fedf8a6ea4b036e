"""Parallel non-maximum suppression for single-shot methods: Matrix NMS (SOLOv2) and Fast NMS (YOLACT).

Both replace the sequential greedy loop of classic NMS by one IoU matrix, so they cost a few matrix products
whatever the number of candidates. torchvision offers only the greedy box NMS (``batched_nms``), which is why
these two are written here, from the papers' equations.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou


def mask_iou_matrix(masks: Tensor) -> Tensor:
    """Pairwise IoU (Tensor[N, N], float32) of binary or soft masks (Tensor[N, H, W]); empty masks give 0."""
    flat = masks.reshape(masks.shape[0], -1).float()
    intersection = flat @ flat.T
    areas = flat.sum(dim=1)
    union = areas[:, None] + areas[None, :] - intersection
    return intersection / union.clamp(min=1e-6)


def _same_label(labels: Tensor) -> Tensor:
    return labels[:, None] == labels[None, :]


def matrix_nms(masks: Tensor, labels: Tensor, scores: Tensor, kernel: str = "gaussian", sigma: float = 0.5) -> Tensor:
    """Decayed scores (Tensor[N], in the input order) of SOLOv2's Matrix NMS (Wang et al. 2020, Eqn. 4).

    ``masks`` Tensor[N, H, W] (binary), ``labels`` Tensor[N], ``scores`` Tensor[N]. Each mask j is decayed by the
    most overlapping higher-scored mask i of its class, compensated by how much i was itself overlapped:
    ``decay_j = min_i f(iou_ij) / f(iou_max_i)`` with ``f(x) = exp(-x^2 / sigma)`` (``kernel="gaussian"``) or
    ``f(x) = 1 - x`` (``"linear"``). Nothing is removed: callers threshold the decayed scores.
    """
    if kernel not in ("gaussian", "linear"):
        raise ValueError(f"matrix_nms: kernel must be 'gaussian' or 'linear', got {kernel!r}")
    n = scores.shape[0]
    if n == 0:
        return scores.clone()
    order = scores.argsort(descending=True)
    iou = mask_iou_matrix(masks)[order][:, order]  # reorder the N x N matrix, not the N masks
    iou = (iou * _same_label(labels[order])).triu(diagonal=1)  # [i, j]: i scores higher than j
    # how much each i was overlapped by a higher-scored mask of its class, broadcast along rows
    compensation = iou.max(dim=0).values[:, None].expand(n, n)
    if kernel == "gaussian":
        decay_matrix = torch.exp(-(iou**2 - compensation**2) / sigma)
    else:
        decay_matrix = (1 - iou) / (1 - compensation).clamp(min=1e-6)
    decay = decay_matrix.min(dim=0).values  # [N]: the strongest suppression of each j
    decayed = torch.empty_like(scores)
    decayed[order] = scores[order] * decay.to(scores.dtype)
    return decayed


def fast_nms(boxes: Tensor, labels: Tensor, scores: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Indices kept by YOLACT's Fast NMS (Bolya et al. 2019), highest score first (Tensor[K], int64).

    ``boxes`` Tensor[N, 4] xyxy, ``labels`` Tensor[N], ``scores`` Tensor[N]. A box is dropped when any
    higher-scored box of its class overlaps it by more than ``iou_threshold`` -- even one that is itself dropped,
    which is what lets the whole decision be one upper-triangular IoU matrix (slightly more suppression than
    greedy NMS, for a large speed-up).
    """
    if scores.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=scores.device)
    order = scores.argsort(descending=True)
    iou = box_iou(boxes[order].float(), boxes[order].float())
    iou = (iou * _same_label(labels[order])).triu(diagonal=1)
    keep = iou.max(dim=0).values <= iou_threshold
    return order[keep]
