"""``WatershedPostprocessor``: seeded watershed of the predicted distance inside the predicted foreground."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from instseg_runtime.grouping import watershed_labels
from torch import Tensor

from instseg.ops.instance_maps import scored_instances
from instseg.structures import ImageBatch, Instances

SEED_METHODS = ("threshold", "peaks")


class WatershedPostprocessor:
    """Turn ``fg_logits`` / ``distance`` (/ ``class_logits``) maps into ``Instances`` at the original image size.

    The maps are cropped to each image's valid region and upsampled bilinearly to its original size *before*
    the watershed, so boundaries are drawn at full resolution and ``min_area`` counts original pixels.
    Then, per image (``segment``):
      1. foreground = ``fg_prob > fg_threshold``;
      2. seeds: ``"threshold"`` (default) takes the connected regions of ``distance > seed_threshold`` inside the
         foreground. Because the distance is normalised per object every object peaks near 1, so this level set
         acts as an h-maxima transform with ``h = 1 - seed_threshold`` at a fraction of the cost of
         ``skimage.morphology.h_maxima``, and it cannot split a flat top into several seeds. ``"peaks"`` uses
         ``skimage.feature.peak_local_max`` (``min_distance``, ``threshold_abs=seed_threshold``) instead;
         a foreground component that got no seed becomes one object, so no confident pixel is dropped;
      3. ``skimage.segmentation.watershed`` of ``-distance`` from the seeds, restricted to the foreground;
      4. objects below ``min_area`` pixels are dropped; score = mean foreground probability over the object;
         class = the class with the highest mean probability over the object; objects scoring under
         ``score_threshold`` are dropped (the model returns only the objects it believes in).
    """

    def __init__(
        self,
        fg_threshold: float = 0.5,
        seed_threshold: float = 0.5,
        seed_method: str = "threshold",
        min_distance: int = 3,
        min_area: int = 8,
        score_threshold: float = 0.5,
    ) -> None:
        if seed_method not in SEED_METHODS:
            raise ValueError(f"methods/watershed/postprocess.py: seed_method must be one of {SEED_METHODS}")
        self.fg_threshold = fg_threshold
        self.seed_threshold = seed_threshold
        self.seed_method = seed_method
        self.min_distance = min_distance
        self.min_area = min_area
        self.score_threshold = score_threshold

    def segment(self, fg_prob: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Label map (int32 [H, W], 0 = background, ids not contiguous) from foreground probability and distance:
        steps 1-4 above, the runtime's numpy ``watershed_labels`` (one copy for PyTorch and exported models)."""
        return watershed_labels(
            fg_prob,
            distance,
            self.fg_threshold,
            self.seed_threshold,
            self.seed_method,
            self.min_distance,
            self.min_area,
        )

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        results = []
        for i, ((h, w), original) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            maps = [outputs["fg_logits"][i, :, :h, :w].sigmoid(), outputs["distance"][i, :, :h, :w]]
            if "class_logits" in outputs:
                maps.append(outputs["class_logits"][i, :, :h, :w].softmax(dim=0))
            stacked = torch.cat(maps).float()[None]  # [1, 2 (+K), h, w]
            if (h, w) != tuple(original):
                stacked = F.interpolate(stacked, size=tuple(original), mode="bilinear", align_corners=False)
            stacked = stacked[0].detach().cpu()
            label_map = torch.from_numpy(self.segment(stacked[0].numpy(), stacked[1].numpy()))
            results.append(self.to_instances(label_map, stacked[0], stacked[2:] if stacked.shape[0] > 2 else None))
        return results

    def to_instances(self, label_map: Tensor, fg_prob: Tensor, class_prob: Tensor | None) -> Instances:
        """``Instances`` of a label map Tensor[H, W], scored by mean ``fg_prob`` and classed by ``class_prob``."""
        instances = scored_instances(label_map, fg_prob, class_prob, compact=True)  # crops: memory of the objects
        keep = torch.ge(instances.scores, self.score_threshold)  # type: ignore[arg-type]  # scores always set here
        return instances if bool(keep.all()) else instances[keep]
