"""``SOLOv2Postprocessor``: grid-cell scores and dynamic kernels -> scored, de-duplicated masks at the original size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from instseg.ops.masks import threshold_upsampled_masks
from instseg.ops.nms import matrix_nms
from instseg.structures import ImageBatch, Instances


def point_nms(scores: Tensor, num_grids: Sequence[int]) -> Tensor:
    """Zero every cell score (Tensor[G, K], levels flattened row-major) that is not the maximum of its 2 x 2
    neighbourhood on its level's grid: neighbouring cells of one object predict the same mask."""
    out, offset = [], 0
    for s in num_grids:
        level = scores[offset : offset + s * s].T.reshape(1, -1, s, s)  # [1, K, S, S]
        peak = F.max_pool2d(level, 2, stride=1, padding=1)[..., :-1, :-1]
        out.append((level * (peak == level)).reshape(-1, s * s).T)
        offset += s * s
    return torch.cat(out)


class SOLOv2Postprocessor:
    """Per image (SOLOv2, Sec. 4):
    1. cell scores = sigmoid(``cls_logits``), local maxima only (``point_nms``), kept above ``score_threshold``,
       the ``pre_nms_top_k`` best (cell, class) pairs;
    2. their masks = dynamic 1x1 conv of ``mask_features`` by the cells' kernels, sigmoid, binarised at
       ``mask_threshold``; masks of at most ``min_area`` pixels (mask-feature scale) are dropped;
    3. score x maskness (mean soft mask inside the binary mask), then Matrix NMS (``instseg.ops.nms``) decays
       the scores; those under ``update_threshold`` are dropped and the best ``max_per_image`` kept;
    4. soft masks are resampled to ``original_sizes`` (the ``image_sizes`` part of the grid) and binarised,
       only around each object; boxes come from the masks, empty masks are dropped.
    """

    def __init__(
        self,
        num_grids: Sequence[int],
        mask_stride: int = 4,
        score_threshold: float = 0.1,
        mask_threshold: float = 0.5,
        pre_nms_top_k: int = 500,
        update_threshold: float = 0.05,
        max_per_image: int = 100,
        nms_kernel: str = "gaussian",
        nms_sigma: float = 0.5,
        min_area: float = 0.0,
    ) -> None:
        self.num_grids = [int(s) for s in num_grids]
        self.mask_stride = mask_stride
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.pre_nms_top_k = pre_nms_top_k
        self.update_threshold = update_threshold
        self.max_per_image = max_per_image
        self.nms_kernel = nms_kernel
        self.nms_sigma = nms_sigma
        self.min_area = min_area

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        results = []
        for i, (size, original) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            soft, labels, scores = self.detect(
                outputs["cls_logits"][i], outputs["kernels"][i], outputs["mask_features"][i]
            )
            results.append(self.to_instances(soft, labels, scores, tuple(size), tuple(original)))  # type: ignore[arg-type]
        return results

    def detect(self, cls_logits: Tensor, kernels: Tensor, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Soft masks Tensor[D, H/4, W/4], labels Tensor[D] int64, scores Tensor[D] of one image, best first,
        from its ``cls_logits`` Tensor[G, K], ``kernels`` Tensor[G, E] and ``mask_features`` Tensor[E, H/4, W/4]."""
        scores = point_nms(cls_logits.float().sigmoid(), self.num_grids)  # [G, K]
        cells, labels = (scores > self.score_threshold).nonzero(as_tuple=True)
        scores = scores[cells, labels]
        if scores.numel() > self.pre_nms_top_k:
            top = scores.topk(self.pre_nms_top_k).indices
            cells, labels, scores = cells[top], labels[top], scores[top]
        soft = torch.einsum("de,ehw->dhw", kernels[cells].float(), features.float()).sigmoid()  # [D, H/4, W/4]
        # binary masks as 0/1 floats: summing and multiplying floats is several times faster than bools on CPU,
        # and copies of the [D, H/4, W/4] maps are made only where something is dropped
        binary = (soft > self.mask_threshold).to(soft.dtype)
        area = binary.sum(dim=(1, 2))
        keep = area > self.min_area
        if not bool(keep.all()):
            soft, binary, labels, scores, area = soft[keep], binary[keep], labels[keep], scores[keep], area[keep]
        maskness = (soft * binary).sum(dim=(1, 2)) / area.clamp(min=1.0)
        scores = scores * maskness
        if scores.numel():
            scores = matrix_nms(binary, labels, scores, kernel=self.nms_kernel, sigma=self.nms_sigma)
        kept = (scores >= self.update_threshold).nonzero().flatten()
        final = kept[scores[kept].argsort(descending=True)[: self.max_per_image]]
        return soft[final], labels[final].long(), scores[final].clamp(0.0, 1.0)

    def to_instances(
        self, soft: Tensor, labels: Tensor, scores: Tensor, size: tuple[int, int], original: tuple[int, int]
    ) -> Instances:
        """Soft masks at the mask-feature scale -> ``Instances`` at ``original``: one bilinear step from the
        feature grid (the image's ``size`` part of it) to the original pixels, thresholded, computed only around
        each object (``instseg.ops.masks``); boxes from the masks, empty masks dropped."""
        oh, ow = original
        if soft.shape[0] == 0:
            return Instances.empty((oh, ow), with_scores=True).to(soft.device)
        masks, boxes = threshold_upsampled_masks(soft, self.mask_stride, size, original, self.mask_threshold)
        nonempty = boxes[:, 2] > boxes[:, 0]
        masks, boxes, labels, scores = masks[nonempty], boxes[nonempty], labels[nonempty], scores[nonempty]
        return Instances((oh, ow), boxes=boxes, labels=labels, masks=masks, scores=scores)
