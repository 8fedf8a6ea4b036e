"""``PolarMaskPostprocessor``: FCOS detection on the polygons' boxes, polygons rasterised at the original size."""

from __future__ import annotations

import torch
from instseg_runtime.polygons import rasterize_polygon  # numpy: one rasteriser for PyTorch and the runtime
from torch import Tensor

from instseg.heads import FCOSSelector
from instseg.ops.polar_rays import polygon_vertices, ray_directions
from instseg.structures import BoxMasks, ImageBatch, Instances


def polygon_ltrb(rays: Tensor) -> Tensor:
    """Tensor[..., 4] distances ``(l, t, r, b)`` from each point to the sides of the box of its polygon of ray
    lengths Tensor[..., n] (the extremes of ``d_k cos`` and ``d_k sin`` over the rays)."""
    direction = ray_directions(int(rays.shape[-1])).to(rays.device, rays.dtype)  # [n, 2] (dy, dx)
    dy, dx = rays * direction[:, 0], rays * direction[:, 1]
    return torch.stack([(-dx).amax(-1), (-dy).amax(-1), dx.amax(-1), dy.amax(-1)], dim=-1).clamp(min=0)


class PolarMaskPostprocessor:
    """Per image: ``FCOSSelector`` (score ``sqrt(class * centre-ness)``, class-wise NMS) on the boxes of the
    points' polygons, as PolarMask suppresses duplicates; then each kept polygon, scaled to the original image,
    rasterised there (``rasterize_polygon``: pixel centres inside), held cropped to its box (``BoxMasks``).
    Objects whose polygon covers no pixel centre are dropped; boxes are the masks' tight boxes."""

    def __init__(
        self, score_threshold: float = 0.05, pre_nms_top_k: int = 1000, nms_iou: float = 0.5, max_detections: int = 100
    ) -> None:
        self.selector = FCOSSelector(score_threshold, pre_nms_top_k, nms_iou, max_detections)

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        results = []
        points = outputs["points"]
        for i, ((h, w), (oh, ow)) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            rays = outputs["rays"][i].float()
            idx, _, scores, labels = self.selector(
                outputs["class_logits"][i], polygon_ltrb(rays), outputs["centerness_logits"][i], points, (h, w)
            )
            # points are pixel indices of the resized image: scale them and the rays' directions to the original
            centres = points[idx].flip(1).double()  # (y, x)
            vertices = polygon_vertices(centres, rays[idx].double())  # [D, n, 2] (y, x)
            vertices = vertices * vertices.new_tensor([oh / h, ow / w])
            crops, offsets = [], []
            for v in vertices.cpu().numpy():
                (x0, y0, _, _), crop = rasterize_polygon(v, (oh, ow))
                crops.append(torch.from_numpy(crop))
                offsets.append((x0, y0))
            masks = BoxMasks.from_crops((oh, ow), crops, offsets)
            found = Instances((oh, ow), labels=labels, masks=masks, scores=scores.float().cpu())
            results.append(found[masks.areas() > 0])
        return results
