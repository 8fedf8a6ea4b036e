"""The bridge between ``(image, Instances)`` and torchvision ``tv_tensors``, and the pipeline that keeps them in step.

Every augmentation step works on a *sample*: a dict ``{"image": tv_tensors.Image [3, H, W] uint8,
"boxes": tv_tensors.BoundingBoxes [N, 4] XYXY, "labels": Tensor[N] int64, "masks": tv_tensors.Mask [N, H, W] bool}``
(``"masks"`` only when the target has masks). torchvision.transforms.v2 dispatches on these types, so one call
moves the image, the masks and the boxes together, and plain tensors (labels) pass through untouched.
After each step that can cut or resample objects ``JointPipeline`` drops objects that left the image and
re-derives tight boxes from the masks, so labels, boxes and masks stay aligned whatever the step did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors

from instseg.ops.boxes import clip_boxes, masks_to_boxes
from instseg.structures import Instances

Sample = dict[str, Any]
SampleTransform = Callable[[Sample], Sample]


def to_sample(image: Tensor, target: Instances) -> Sample:
    """Wrap an image (Tensor[3, H, W] uint8) and its ``Instances`` as a dict of tv_tensors."""
    if image.dim() != 3 or image.dtype != torch.uint8:
        raise TypeError(f"transforms expect a uint8 image [3, H, W], got {image.dtype} {tuple(image.shape)}")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if target.image_size != (h, w):
        raise ValueError(f"target image_size {target.image_size} differs from the image size {(h, w)}")
    sample: Sample = {
        "image": tv_tensors.Image(image),
        "boxes": tv_tensors.BoundingBoxes(target.boxes.float(), format="XYXY", canvas_size=(h, w)),
        "labels": target.labels,
    }
    if target.masks is not None:
        sample["masks"] = tv_tensors.Mask(target.masks)  # bool, no copy
    if target.scores is not None:
        sample["scores"] = target.scores
    return sample


def sample_size(sample: Sample) -> tuple[int, int]:
    """``(height, width)`` of the sample's image."""
    return int(sample["image"].shape[-2]), int(sample["image"].shape[-1])


def drop_lost_objects(sample: Sample, min_box_side: float = 1.0) -> Sample:
    """Drop objects that a geometric step removed and make the boxes tight again.

    With masks: an object survives iff its mask keeps at least one pixel, and its box becomes the mask's
    tight box (``masks_to_boxes``), so a cropped or occluded object never keeps a stale box. Without masks
    (box-only data): boxes are clipped to the image and those thinner than ``min_box_side`` are dropped.
    """
    h, w = sample_size(sample)
    masks = sample.get("masks")
    if masks is not None:
        boxes = masks_to_boxes(masks)  # an empty mask gets the box [0, 0, 0, 0]
        keep = boxes[:, 2] > boxes[:, 0]
        if not bool(keep.all()):  # index (a copy of every mask) only when something was lost
            masks, boxes = masks[keep], boxes[keep]
    else:
        boxes = clip_boxes(sample["boxes"].as_subclass(Tensor), (h, w))
        keep = ((boxes[:, 2] - boxes[:, 0]) >= min_box_side) & ((boxes[:, 3] - boxes[:, 1]) >= min_box_side)
        boxes = boxes[keep]
    out = dict(sample)
    out["boxes"] = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w))
    out["labels"] = sample["labels"][keep]
    if masks is not None:
        out["masks"] = tv_tensors.Mask(masks)
    if "scores" in sample:
        out["scores"] = sample["scores"][keep]
    return out


def from_sample(sample: Sample) -> tuple[Tensor, Instances]:
    """Unwrap a sample into a plain uint8 image Tensor[3, H, W] and its ``Instances`` (bool masks)."""
    image = sample["image"].as_subclass(Tensor)
    assert image.dtype == torch.uint8, f"a transform changed the image dtype to {image.dtype}"
    masks = sample.get("masks")
    target = Instances(
        sample_size(sample),
        boxes=sample["boxes"].as_subclass(Tensor).float(),
        labels=sample["labels"],
        masks=masks.as_subclass(Tensor).bool() if masks is not None else None,
        scores=sample.get("scores"),
    )
    return image, target


@dataclass
class JointStep:
    """One augmentation step on a sample.

    ``recheck``: the step can cut objects away or resample masks (resize, crop, pad, arbitrary rotation), so
    objects are re-checked and boxes re-derived from masks after it. Steps that only permute pixels (flips,
    90-degree rotations: torchvision moves the boxes exactly) or only change colours set it False, because
    re-deriving boxes from hundreds of full-size masks is the costliest part of a pipeline.
    """

    transform: SampleTransform
    recheck: bool = True


class JointPipeline:
    """A sequence of steps applied to ``(image Tensor[3, H, W] uint8, Instances)``; returns the same pair.

    Randomness comes from torch's global RNG (the data loader seeds it per worker), so a pipeline is
    reproducible under ``torch.manual_seed``.
    """

    def __init__(self, steps: Sequence[JointStep | SampleTransform]) -> None:
        self.steps = [s if isinstance(s, JointStep) else JointStep(s) for s in steps]

    def __call__(self, image: Tensor, target: Instances) -> tuple[Tensor, Instances]:
        if not self.steps:
            return image, target
        sample = to_sample(image, target)
        for step in self.steps:
            sample = step.transform(sample)
            if step.recheck:
                sample = drop_lost_objects(sample)
        return from_sample(sample)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        lines = [f"  {s.transform!r}{'' if s.recheck else '  (no recheck)'}" for s in self.steps]
        return "JointPipeline(\n" + "\n".join(lines) + "\n)"
