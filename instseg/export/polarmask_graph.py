"""PolarMask in one graph: network, FCOS detection on the polygons' boxes, polygon vertices at the image's size
(rasterised by the runtime: ``instseg_runtime.polygon_detections``)."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.export.fcos_steps import fcos_detections, traced_point_values, traced_points
from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import size_tensor
from instseg.methods.polarmask import PolarMask, polygon_ltrb
from instseg.methods.polarmask.model import MAX_RAY_LOGIT
from instseg.ops.polar_rays import ray_directions


class PolarMaskGraph(ExportGraph):
    """``forward(image, original_size) -> (vertices, scores, labels, batch_index)``: ``PolarMask.forward`` and the
    steps of ``PolarMaskPostprocessor`` up to the polygons, for every image of the batch at once; ``vertices``
    Tensor[D, n, 2] ``(y, x)`` are in pixels of the original image (the frame the runtime rasterises in)."""

    family = "polygons"

    def __init__(self, model: PolarMask) -> None:
        super().__init__(model)
        self.output_names = ["vertices", "scores", "labels", "batch_index"]

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: PolarMask = self.model  # type: ignore[assignment]
        post = m.postprocessor
        levels = list(m.neck(m.backbone(self.normalized(image))).values())
        out = m.head(levels)
        points = traced_points(levels, m.strides)
        strides = traced_point_values(levels, [float(s) for s in m.strides])
        rays = out["extra"].float().clamp(max=MAX_RAY_LOGIT).exp() * strides[None, :, None]  # [B, P, n]
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        images, idx, _, scores, labels = fcos_detections(
            post.selector, out["class_logits"], polygon_ltrb(rays), out["centerness_logits"], points, (h, w)
        )
        direction = ray_directions(m.head.extra_outputs).float()  # [n, 2] (dy, dx)
        centres = points[idx].flip(1)  # [D, 2] (y, x)
        vertices = centres[:, None, :] + rays[images, idx][:, :, None] * direction[None]
        scale = torch.stack([original_size[0] / h, original_size[1] / w]).float()
        return vertices * scale, scores, labels, images
