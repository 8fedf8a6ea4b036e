"""CenterMask in one graph: network, FCOS detection, the spatial attention mask head on the kept boxes, masks
pasted at the original size."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.export.fcos_steps import fcos_detections, traced_points
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import size_tensor
from instseg.export.mask_rcnn_graph import pasted_detections
from instseg.methods.centermask import CenterMask


class CenterMaskGraph(ExportGraph):
    """``forward(image, original_size) -> (boxes, scores, labels, masks, batch_index)``: ``CenterMask.forward`` in
    eval mode and ``paste_region_masks``, with the level sizes traced (points) and the image size passed on as a
    traced value."""

    family = "detector"
    batchable = False  # torchvision's MultiScaleRoIAlign takes one box list per image: a trace fixes their count

    def __init__(self, model: CenterMask) -> None:
        super().__init__(model)

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: CenterMask = self.model  # type: ignore[assignment]
        pyramid = m.neck(m.backbone(self.normalized(image)))
        levels = list(pyramid.values())
        out = m.head(levels)
        points = traced_points(levels, m.strides)
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        _, _, boxes, scores, labels = fcos_detections(
            m.selector, out["class_logits"], out["box_ltrb"], out["centerness_logits"], points, (h, w)
        )
        logits = m.mask_head(m.mask_pool(pyramid, [boxes], [(h, w)]))  # type: ignore[list-item]  # [D, K, M, M]
        size = logits.shape[-1]
        probs = logits.gather(1, labels[:, None, None, None].expand(-1, 1, size, size))[:, 0].sigmoid()
        boxes, masks = pasted_detections(boxes, probs, (h, w), original_size, m.mask_threshold)
        return boxes, scores, labels, masks, torch.zeros_like(labels)
