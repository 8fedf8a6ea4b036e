"""``StarConvexPostprocessor``: confident pixels' polygons, greedy polygon NMS, masks cropped to their boxes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from instseg_runtime.polygons import polygon_nms  # numpy: one copy for PyTorch and exported models
from torch import Tensor

from instseg.structures import BoxMasks, ImageBatch, Instances

__all__ = ["StarConvexPostprocessor", "polygon_nms"]


class StarConvexPostprocessor:
    """Turn ``prob_logits`` / ``distances`` (/ ``class_logits``) maps into ``Instances`` at the original image size.

    The maps are cropped to each image's valid region and, when the model resized the image, resampled
    bilinearly to its original size (distances multiplied by the mean of the two axes' scale factors, so they
    stay in pixels of the image they are drawn in); then ``polygon_nms`` keeps the polygons. Each object's score
    is the probability at its centre pixel and its class the most probable one there; its mask is the rasterised
    polygon, held cropped to its box (``BoxMasks``). Only every ``candidate_stride``-th pixel of each axis is a
    candidate (2: four times fewer polygons to rasterise; a nucleus still has many candidates near its centre),
    and ``skip_covered`` drops candidates inside kept masks unrasterised (see ``polygon_nms``).
    """

    def __init__(
        self,
        prob_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        min_area: int = 8,
        max_candidates: int = 20000,
        max_detections: int = 1000,
        candidate_stride: int = 2,
        skip_covered: bool = True,
    ) -> None:
        if candidate_stride < 1:
            raise ValueError(f"candidate_stride must be >= 1, got {candidate_stride}")
        self.prob_threshold = prob_threshold
        self.nms_threshold = nms_threshold
        self.min_area = min_area
        self.max_candidates = max_candidates
        self.max_detections = max_detections
        self.candidate_stride = candidate_stride
        self.skip_covered = skip_covered

    def original_maps(self, outputs: dict[str, Tensor], index: int, images: ImageBatch) -> dict[str, np.ndarray]:
        """Image ``index``'s maps at its original size as float32 numpy: ``prob`` [H, W], ``distances`` [n, H, W]
        (pixels of the original image) and, with several classes, ``class_prob`` [K, H, W]."""
        (h, w), original = images.image_sizes[index], tuple(images.original_sizes[index])
        maps = [outputs["prob_logits"][index, :, :h, :w].sigmoid(), outputs["distances"][index, :, :h, :w]]
        if "class_logits" in outputs:
            maps.append(outputs["class_logits"][index, :, :h, :w].softmax(dim=0))
        stacked = torch.cat(maps).float()  # [1 + n (+K), h, w]
        n_rays = maps[1].shape[0]
        if (h, w) != original:
            stacked = F.interpolate(stacked[None], size=original, mode="bilinear", align_corners=False)[0]
            scale = (original[0] / h + original[1] / w) / 2.0
            stacked[1 : 1 + n_rays] *= scale
        stacked = stacked.detach().cpu()
        out = {"prob": stacked[0].numpy(), "distances": stacked[1 : 1 + n_rays].numpy()}
        if stacked.shape[0] > 1 + n_rays:
            out["class_prob"] = stacked[1 + n_rays :].numpy()
        return out

    def group(self, maps: dict[str, np.ndarray]) -> Instances:
        """``Instances`` (compact masks) of one image's maps at its size (``original_maps``' keys)."""
        prob, distances = maps["prob"], maps["distances"]
        h, w = prob.shape
        kept, windows, crops = polygon_nms(
            prob,
            distances,
            self.prob_threshold,
            self.nms_threshold,
            self.min_area,
            self.max_candidates,
            self.max_detections,
            self.candidate_stride,
            self.skip_covered,
        )
        scores = torch.from_numpy(prob.reshape(-1)[kept].astype(np.float32))
        if "class_prob" in maps:
            labels = torch.from_numpy(maps["class_prob"].reshape(maps["class_prob"].shape[0], -1)[:, kept].argmax(0))
        else:
            labels = torch.zeros(len(kept), dtype=torch.int64)
        offsets = [(x0, y0) for x0, y0, _, _ in windows]
        masks = BoxMasks.from_crops((h, w), [torch.from_numpy(c) for c in crops], offsets)
        return Instances((h, w), labels=labels.long(), masks=masks, scores=scores)

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        return [self.group(self.original_maps(outputs, i, images)) for i in range(len(images.image_sizes))]
