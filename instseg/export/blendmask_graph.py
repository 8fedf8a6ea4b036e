"""BlendMask in one graph: network, FCOS detection, the blender over each box, masks pasted into the boxes."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.export.fcos_steps import fcos_detections, traced_points
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import occupancy_boxes, size_tensor
from instseg.methods.blendmask import BlendMask
from instseg.ops.blender import blend


def box_sampling_matrix(starts: Tensor, ends: Tensor, length: Tensor, resolution: int) -> Tensor:
    """Tensor[N, L, R] (float): row ``x`` of box ``n`` holds the two bilinear weights with which output pixel
    ``x`` of an axis of ``length`` L reads a box-relative grid of ``resolution`` R, zero outside the box's pixels;
    the geometry of ``instseg.ops.box_paste.paste_in_boxes`` (pixel centres in ``[start, end)``, source
    ``(x + 0.5 - start) R / (end - start) - 0.5`` clamped to the grid), one box side per row of ``starts`` /
    ``ends`` Tensor[N]."""
    x = torch.arange(length, dtype=torch.float32)  # type: ignore[call-overload]  # a traced size when exporting
    size = (ends - starts).clamp(min=1e-6)
    u = ((x[None] + 0.5 - starts[:, None]) / size[:, None] * resolution - 0.5).clamp(0.0, resolution - 1.0)
    lo = u.floor()
    frac = u - lo
    hi = (lo + 1.0).clamp(max=resolution - 1.0)
    cells = torch.arange(resolution, dtype=torch.float32)
    weights = (cells == lo[..., None]).float() * (1.0 - frac)[..., None] + (cells == hi[..., None]).float() * frac[
        ..., None
    ]
    inside = (x[None] >= torch.ceil(starts - 0.5)[:, None]) & (x[None] < torch.ceil(ends - 0.5)[:, None])
    return weights * inside[..., None].float()


def paste_masks(probs: Tensor, boxes: Tensor, height: Tensor, width: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Bool masks Tensor[N, H, W] and their tight boxes Tensor[N, 4] of box-relative probabilities Tensor[N, R, R]
    pasted into ``boxes`` Tensor[N, 4] of an H x W image and thresholded: ``paste_in_boxes`` as two batched matrix
    products (``Wy (P - t) Wx^T > 0``: the bilinear weights of a pixel sum to 1 inside its box, 0 outside)."""
    r = probs.shape[-1]
    wy = box_sampling_matrix(boxes[:, 1], boxes[:, 3], height, r)  # [N, H, R]
    wx = box_sampling_matrix(boxes[:, 0], boxes[:, 2], width, r).transpose(1, 2)  # [N, R, W]
    filled = torch.matmul(torch.matmul(wy, probs - threshold), wx) > 0  # [N, H, W]
    inside = (wy.sum(dim=2) > 0.5)[:, :, None] & (wx.sum(dim=1) > 0.5)[:, None, :]
    masks = filled & inside
    return masks, occupancy_boxes(masks.any(dim=2), masks.any(dim=1))


class BlendMaskGraph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks, batch_index)``: ``BlendMask.forward`` and
    the steps of ``BlendMaskPostprocessor`` for every image of the batch at once (points from the traced level
    sizes; the blender's RoIAlign exports as ONNX ``RoiAlign``)."""

    family = "detector"

    def __init__(self, model: BlendMask) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: BlendMask = self.model  # type: ignore[assignment]
        post = m.postprocessor
        levels = list(m.neck(m.backbone(self.normalized(image))).values())
        out = m.head(levels)
        points = traced_points(levels, m.strides)
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        images, idx, boxes, scores, labels = fcos_detections(
            post.selector, out["class_logits"], out["box_ltrb"], out["centerness_logits"], points, (h, w)
        )
        k, a = m.bottom.num_bases, m.attention_size
        attentions = out["extra"][images, idx].float().unflatten(1, (k, a, a))  # [D, K, M, M]
        bases = m.bottom(levels).float()
        probs = blend(bases, boxes, images, attentions, post.resolution, post.basis_stride).sigmoid()
        oh, ow = original_size[0], original_size[1]
        factor = torch.stack([ow / w, oh / h, ow / w, oh / h]).float()
        masks, mask_boxes = paste_masks(probs, boxes * factor, oh, ow, post.mask_threshold)
        nonempty = mask_boxes[:, 2] > mask_boxes[:, 0]
        return mask_boxes[nonempty], scores[nonempty], labels[nonempty], masks[nonempty], images[nonempty]
