"""``BlendMaskPostprocessor``: FCOS detections, their blended masks pasted into the boxes at the original size."""

from __future__ import annotations

import torch
from torch import Tensor

from instseg.heads import FCOSSelector
from instseg.ops.blender import blend
from instseg.ops.box_paste import paste_in_boxes
from instseg.ops.boxes import scale_boxes
from instseg.structures import BoxMasks, ImageBatch, Instances


class BlendMaskPostprocessor:
    """Turn the raw outputs of ``BlendMask.forward`` into ``Instances`` at ``images.original_sizes``.

    Per image:
      1. ``FCOSSelector``: points above ``score_threshold`` (the best ``pre_nms_top_k``), score
         ``sqrt(class * centre-ness)``, decoded and clipped boxes, class-wise NMS at ``nms_iou``, the best
         ``max_detections``;
      2. each detection's attentions blend the bases over its **predicted** box into ``R x R`` mask logits
         (``instseg.ops.blender.blend``);
      3. the boxes scaled to the original image, the mask probabilities pasted into them there and thresholded at
         ``mask_threshold`` (``instseg.ops.box_paste``: a mask never leaves its box), held as ``BoxMasks``;
      4. boxes re-derived from the masks (their tight boxes), empty masks dropped.
    """

    def __init__(
        self,
        resolution: int = 56,
        basis_stride: int = 4,
        score_threshold: float = 0.05,
        pre_nms_top_k: int = 1000,
        nms_iou: float = 0.6,
        max_detections: int = 100,
        mask_threshold: float = 0.5,
    ) -> None:
        self.resolution, self.basis_stride, self.mask_threshold = resolution, basis_stride, mask_threshold
        self.selector = FCOSSelector(score_threshold, pre_nms_top_k, nms_iou, max_detections)

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        results = []
        points, bases = outputs["points"], outputs["bases"].float()
        for i, ((h, w), (oh, ow)) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            idx, boxes, scores, labels = self.selector(
                outputs["class_logits"][i],
                outputs["box_ltrb"][i],
                outputs["centerness_logits"][i],
                points,
                (h, w),
            )
            image_index = torch.full_like(idx, i)
            attentions = outputs["attentions"][i, idx].float()  # [D, K, M, M]
            probs = blend(bases, boxes, image_index, attentions, self.resolution, self.basis_stride).sigmoid()
            original_boxes = scale_boxes(boxes, (ow / w, oh / h))
            crops, corners = paste_in_boxes(probs, original_boxes, (oh, ow), self.mask_threshold)
            masks = BoxMasks.from_crops((oh, ow), [c.cpu() for c in crops], corners)
            found = Instances((oh, ow), labels=labels.cpu(), masks=masks, scores=scores.float().cpu())
            results.append(found[masks.areas() > 0])
        return results
