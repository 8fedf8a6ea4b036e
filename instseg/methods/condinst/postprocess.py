"""``CondInstPostprocessor``: FCOS detection, then the dynamic masks of the kept points at the original size."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.heads import FCOSSelector
from instseg.methods.condinst.head import DynamicMaskHead
from instseg.ops.boxes import scale_boxes
from instseg.ops.masks import threshold_upsampled_masks
from instseg.structures import ImageBatch, Instances


class CondInstPostprocessor:
    """Turn the raw outputs of ``CondInst.forward`` into ``Instances`` at ``images.original_sizes``.

    Per image:
      1. ``FCOSSelector``: points whose class probability exceeds ``score_threshold`` (best ``pre_nms_top_k``),
         score ``sqrt(class * centre-ness)``, class-wise NMS at ``nms_iou``, the best ``max_detections``;
      2. only for those points, their dynamic masks (``DynamicMaskHead``, logits at stride 4), so the mask cost
         follows the detections, not the points;
      3. probabilities upsampled to the original size in one bilinear step, thresholded at ``mask_threshold`` and
         kept inside the detection's box (``instseg.ops.masks.threshold_upsampled_masks``: a filter that fires on
         a look-alike elsewhere cannot leak into this object); boxes re-derived from the masks, empty ones dropped.
    """

    def __init__(
        self,
        score_threshold: float = 0.05,
        pre_nms_top_k: int = 1000,
        nms_iou: float = 0.6,
        max_detections: int = 100,
        mask_threshold: float = 0.5,
    ) -> None:
        self.selector = FCOSSelector(score_threshold, pre_nms_top_k, nms_iou, max_detections)
        self.mask_threshold = mask_threshold

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch, mask_head: DynamicMaskHead) -> list[Instances]:
        results = []
        points, scales, features = outputs["points"], outputs["point_scales"], outputs["mask_features"]
        for i, ((h, w), (oh, ow)) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            idx, boxes, scores, labels = self.selector(
                outputs["class_logits"][i], outputs["box_ltrb"][i], outputs["centerness_logits"][i], points, (h, w)
            )
            image_index = torch.full_like(idx, i)
            logits = mask_head(
                features.float(), image_index, points[idx], scales[idx], outputs["mask_params"][i, idx].float()
            )
            boxes = scale_boxes(boxes, (ow / w, oh / h))
            masks, mask_boxes = threshold_upsampled_masks(
                logits.sigmoid(), mask_head.out_stride, (h, w), (oh, ow), self.mask_threshold, boxes
            )
            keep = mask_boxes[:, 2] > mask_boxes[:, 0]
            results.append(
                Instances((oh, ow), boxes=mask_boxes[keep], labels=labels[keep], masks=masks[keep], scores=scores[keep])
            )
        return results
