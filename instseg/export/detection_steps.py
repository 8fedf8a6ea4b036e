"""Detection steps the single-shot wrappers share, in tensor-only form: Fast NMS, Matrix NMS, final masks."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.export.graph_ops import (
    column_max,
    descending,
    occupancy_boxes,
    same_image,
    size_tensor,
    upsample,
    window_factors,
)


def pairwise_iou(boxes: Tensor) -> tuple[Tensor, Tensor]:
    """IoU Tensor[N, N] of ``xyxy`` boxes Tensor[N, 4], as ``torchvision.ops.box_iou(boxes, boxes)`` but 0 where
    box_iou gives NaN (two empty boxes, 0 / 0), and the bool Tensor[N, N] of those pairs. Written per coordinate
    plane (four [N, N] maxima/minima instead of box_iou's [N, N, 2] ones: several times faster in onnxruntime)."""
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    area = (x1 - x0) * (y1 - y0)
    w = (torch.minimum(x1[:, None], x1[None, :]) - torch.maximum(x0[:, None], x0[None, :])).clamp(min=0)
    h = (torch.minimum(y1[:, None], y1[None, :]) - torch.maximum(y0[:, None], y0[None, :])).clamp(min=0)
    inter = w * h
    union = area[:, None] + area[None, :] - inter
    return inter / union.clamp(min=1e-12), union <= 0


def fast_nms_keep(boxes: Tensor, labels: Tensor, scores: Tensor, images: Tensor, iou_threshold: float) -> Tensor:
    """Indices kept by Fast NMS, highest score first (as ``instseg.ops.nms.fast_nms`` per image; defined for N = 0);
    candidates of different images (``images`` Tensor[N]) never suppress each other.

    In the eager Fast NMS a pair of empty boxes has IoU NaN, which survives the class mask (NaN x 0) and its max, so
    an empty box after another empty box of its image is dropped whatever their classes: an overlap of 2 here."""
    order = descending(scores)
    image = same_image(images[order])
    iou, empty = pairwise_iou(boxes[order])
    same = ((labels[order][:, None] == labels[order][None, :]) & image).to(iou.dtype)
    iou = iou * same + 2.0 * (empty & image).to(iou.dtype)
    return order[column_max(iou.triu(diagonal=1)) <= iou_threshold]


def matrix_nms_sorted(
    masks: Tensor, labels: Tensor, scores: Tensor, images: Tensor, kernel: str, sigma: float
) -> Tensor:
    """Matrix NMS decayed scores of candidates already sorted by decreasing score (as ``instseg.ops.nms.
    matrix_nms`` per image, Tensor[N] in the given order; defined for N = 0). ``masks`` Tensor[N, H, W] 0/1 floats.

    Candidates of different images (``images`` Tensor[N]) get IoU 0, whose decay factors are >= 1, while each
    column's own image already gives a factor <= 1 (its best candidate has no compensation): the minimum, and so
    every score, is that of the image alone."""
    flat = masks.flatten(1)
    intersection = flat @ flat.T
    areas = flat.sum(dim=1)
    iou = intersection / (areas[:, None] + areas[None, :] - intersection).clamp(min=1e-6)
    same = (labels[:, None] == labels[None, :]) & same_image(images)
    iou = (iou * same).triu(diagonal=1)  # [i, j]: i scores higher than j
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
    # float 0/1 masks (1 where above the threshold), so that the rows and columns holding pixels come from two
    # matrix products: onnxruntime's bool casts and reductions over [N, H, W] cost several times the products
    # the threshold is taken off before the bilinear step (its weights sum to 1), which saves a pass over [N, H, W]
    filled = upsample(soft - threshold, oh, ow, scale_y, scale_x).sign().clamp(min=0.0)
    if windows is not None:
        in_rows, in_cols = window_factors(windows, oh, ow)
        filled = filled * in_rows * in_cols
    ones_w = torch.ones_like(torch.arange(ow, dtype=torch.float32))  # type: ignore[call-overload]  # [ow], traced
    ones_h = torch.ones_like(torch.arange(oh, dtype=torch.float32))  # type: ignore[call-overload]  # [oh], traced
    rows = torch.matmul(filled, ones_w[:, None])[:, :, 0] > 0  # [N, oh]
    cols = torch.matmul(ones_h[None, :], filled)[:, 0, :] > 0  # [N, ow]
    return filled > 0.5, occupancy_boxes(rows, cols)


def per_image_product(coefficients: Tensor, images: Tensor, maps: Tensor) -> Tensor:
    """Tensor[D, H, W]: each detection's coefficients Tensor[D, C] applied to its own image's maps
    Tensor[B, C, H, W] (``images`` Tensor[D] int64): YOLACT's prototype combination and SOLOv2's dynamic 1x1
    convolution over a batch. A one-hot spread of the coefficients over the images makes it one product, without
    copying each detection's [C, H, W] maps."""
    onehot = (images[:, None] == torch.arange(size_tensor(maps, 0))[None, :]).to(maps.dtype)  # type: ignore[call-overload]  # [D, B]
    return torch.einsum("dbc,bchw->dhw", onehot[:, :, None] * coefficients[:, None, :], maps)
