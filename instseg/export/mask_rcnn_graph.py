"""Mask R-CNN and the other two-stage segmenters in one graph: proposals, RoI heads (box NMS inside), mask paste
at the original size, threshold."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import size_tensor
from instseg.methods.two_stage_segmenter import TwoStageSegmenter


def paste_masks(probs: Tensor, boxes: Tensor, height: Tensor, width: Tensor) -> Tensor:
    """Tensor[N, H, W]: RoI mask probabilities Tensor[N, M, M] pasted into an image at ``boxes`` Tensor[N, 4].

    torchvision's ``paste_masks_in_image`` geometry (mask padded by one cell, box grown by ``(M + 2) / M`` and
    truncated to integers, mask resized bilinearly to the box and placed there) written with gathers over the
    whole image, because its traced form is a per-mask loop.
    """
    m = probs.shape[-1]
    padded = torch.nn.functional.pad(probs, [1, 1, 1, 1])  # [N, M + 2, M + 2]
    scale = (m + 2) / m
    centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale
    grown = torch.cat([centre - half, centre + half], dim=1).to(torch.int64)  # truncated, as torchvision
    size = (grown[:, 2:] - grown[:, :2] + 1).clamp(min=1)  # [N, 2] (w, h) of the resized mask

    def taps(length: Tensor, start: Tensor, extent: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        pos = torch.arange(length)[None] - start[:, None]  # type: ignore[call-overload]  # [N, L] mask row/column
        inside = (pos >= 0) & (pos < extent[:, None])
        scale = (m + 2) / extent[:, None].float()  # in / out, as F.interpolate computes it
        u = ((pos.float() + 0.5) * scale - 0.5).clamp(0.0, m + 1.0)
        lo = u.floor()
        hi = (lo + 1).clamp(max=m + 1.0)
        return lo.long(), hi.long(), (u - lo), inside

    y_lo, y_hi, fy, in_y = taps(height, grown[:, 1], size[:, 1])  # [N, H]
    x_lo, x_hi, fx, in_x = taps(width, grown[:, 0], size[:, 0])  # [N, W]
    cols = padded.shape[-1]
    rows_lo = torch.gather(padded, 1, y_lo[:, :, None].expand(-1, -1, cols))  # [N, H, M + 2]
    rows_hi = torch.gather(padded, 1, y_hi[:, :, None].expand(-1, -1, cols))
    rows = rows_lo * (1 - fy)[:, :, None] + rows_hi * fy[:, :, None]
    n_rows = rows.shape[1]
    left = torch.gather(rows, 2, x_lo[:, None, :].expand(-1, n_rows, -1))  # [N, H, W]
    right = torch.gather(rows, 2, x_hi[:, None, :].expand(-1, n_rows, -1))
    pasted = left * (1 - fx)[:, None, :] + right * fx[:, None, :]
    return pasted * (in_y[:, :, None] & in_x[:, None, :])


class MaskRCNNGraph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks)``: the sub-modules of
    ``TwoStageSegmenter.forward`` in its order, with the image size passed on as a traced value (``forward`` casts it
    to ``int``, which a trace would freeze), then ``TwoStageSegmenter.postprocess``'s box scaling and mask paste."""

    family = "detector"
    batchable = False  # torchvision's RPN and RoI heads loop over the images in Python: a trace fixes their count

    def __init__(self, model: TwoStageSegmenter) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: TwoStageSegmenter = self.model  # type: ignore[assignment]
        x = self.normalized(image)
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        image_list = ImageList(x, [(h, w)])  # type: ignore[list-item]
        features = m.neck(m.backbone(x))
        proposals, _ = m.rpn(image_list, features)
        detections, _ = m.roi_heads(features, proposals, image_list.image_sizes)
        boxes, scores = detections[0]["boxes"], detections[0]["scores"]
        labels = detections[0]["labels"] - 1  # torchvision's 0 is the background
        probs = detections[0]["masks"][:, 0]  # [D, M, M]
        boxes, masks = pasted_detections(boxes, probs, (h, w), original_size, m.mask_threshold)
        return boxes, scores, labels, masks, torch.zeros_like(labels)


def pasted_detections(
    boxes: Tensor, probs: Tensor, size: tuple[Tensor, Tensor], original_size: Tensor, threshold: float
) -> tuple[Tensor, Tensor]:
    """``paste_region_masks`` in traced form for one image: boxes Tensor[D, 4] of the ``(h, w)`` resized image
    scaled to ``original_size`` and clipped, RoI mask probabilities Tensor[D, M, M] pasted there and thresholded
    (bool Tensor[D, H, W])."""
    h, w = size
    oh, ow = original_size[0], original_size[1]
    factor = torch.stack([ow / w, oh / h, ow / w, oh / h]).float()
    limits = torch.stack([ow, oh, ow, oh]).float()
    boxes = torch.minimum((boxes * factor).clamp(min=0.0), limits)
    return boxes, paste_masks(probs, boxes, oh, ow) > threshold
