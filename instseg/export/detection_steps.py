"""Detection steps the single-shot wrappers share, in tensor-only form: Fast NMS, Matrix NMS, final masks."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou

from instseg.export.graph_ops import column_max, descending, resample, tight_boxes, window_mask


def fast_nms_keep(boxes: Tensor, labels: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices kept by Fast NMS, highest score first (as ``instseg.ops.nms.fast_nms``; defined for N = 0)."""
    order = descending(scores)
    ordered = boxes[order]
    iou = box_iou(ordered, ordered) * (labels[order][:, None] == labels[order][None, :])
    # two empty boxes have IoU 0/0: PyTorch's max propagates the NaN (the box is dropped), onnxruntime's may skip
    # it, so NaN is made an explicit overlap of 2
    iou = torch.where(torch.isnan(iou), torch.full_like(iou, 2.0), iou)
    return order[column_max(iou.triu(diagonal=1)) <= iou_threshold]


def matrix_nms_sorted(masks: Tensor, labels: Tensor, scores: Tensor, kernel: str, sigma: float) -> Tensor:
    """Matrix NMS decayed scores of candidates already sorted by decreasing score (as ``instseg.ops.nms.
    matrix_nms``, Tensor[N] in the given order; defined for N = 0). ``masks`` Tensor[N, H, W] 0/1 floats."""
    flat = masks.flatten(1)
    intersection = flat @ flat.T
    areas = flat.sum(dim=1)
    iou = intersection / (areas[:, None] + areas[None, :] - intersection).clamp(min=1e-6)
    iou = (iou * (labels[:, None] == labels[None, :])).triu(diagonal=1)  # [i, j]: i scores higher than j
    compensation = column_max(iou)[:, None]  # [N, 1]: how much each i was itself overlapped
    if kernel == "gaussian":
        decay_matrix = torch.exp(-(iou**2 - compensation**2) / sigma)
    else:
        decay_matrix = (1 - iou) / (1 - compensation).clamp(min=1e-6)
    ceiling = torch.full_like(decay_matrix.sum(dim=0, keepdim=True), float("inf"))
    decay = torch.cat([ceiling, decay_matrix], dim=0).amin(dim=0)
    return scores * decay


def final_masks(
    soft: Tensor,
    stride: int,
    valid: tuple[Tensor, Tensor],
    original: tuple[Tensor, Tensor],
    threshold: float,
    windows: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Bool masks Tensor[N, oh, ow] and their tight boxes Tensor[N, 4] of grid probabilities Tensor[N, Hg, Wg] (a
    padded input at ``1 / stride``, the image in its top-left ``valid`` part), one bilinear step to ``original``,
    thresholded and kept inside ``windows`` (Tensor[N, 4], original pixels) when given: the result of
    ``instseg.ops.masks.threshold_upsampled_masks``."""
    (h, w), (oh, ow) = valid, original
    scale_y = h.float() / (oh.float() * stride)
    scale_x = w.float() / (ow.float() * stride)
    masks = resample(soft, oh, ow, scale_y, scale_x) > threshold
    if windows is not None:
        masks = masks & window_mask(windows, oh, ow)
    return masks, tight_boxes(masks)
