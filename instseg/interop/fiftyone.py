"""``Instances`` <-> FiftyOne ``Detections`` (the ``fiftyone`` extra): in-memory labels, no database needed.

FiftyOne stores an instance mask the way instseg's ``BoxMasks`` does: a ``Detection`` holds a relative
``bounding_box = [x, y, width, height]`` (fractions of the image) and a ``mask`` covering that box only, so crops
go across as they are and nothing of size N x H x W is ever built. With a mask, the box written is the mask's
integer pixel window, so that FiftyOne draws the mask on exactly the pixels instseg holds; when the instance's
own box differs from that window (the detectors' boxes are not the masks' tight boxes), it travels as the
detection attribute ``box_xyxy`` (absolute pixels) and comes back as the box.

Labels are class names: ``class_names[label]``, or the label's number as text without names; scores are
``confidence``. Building ``Detection`` / ``Detections`` / ``Sample`` objects starts no database: only adding
samples to a ``fiftyone.Dataset`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from instseg.structures import Instances
from instseg.structures.box_masks import BoxMasks

BOX_ATTRIBUTE = "box_xyxy"
NUDGE = 1e-3  # pixels added to a written box's corner, so that FiftyOne's truncation gives its exact pixel


def to_fiftyone(instances: Instances, class_names: Sequence[str] | None = None) -> Any:
    """``fiftyone.Detections`` of ``instances`` (one ``Detection`` each, its mask the object's box crop)."""
    import fiftyone as fo

    instances = instances.to("cpu")
    h, w = instances.image_size
    labels = instances.labels.tolist()
    if class_names is not None and labels and (min(labels) < 0 or max(labels) >= len(class_names)):
        raise ValueError(f"labels {sorted(set(labels))} do not all have a name in {list(class_names)}")
    boxes = instances.boxes.tolist()
    scores = instances.scores.tolist() if instances.scores is not None else [None] * len(instances)
    box_masks = instances.box_masks
    detections = []
    for i, (label, box, score) in enumerate(zip(labels, boxes, scores, strict=True)):
        name = class_names[label] if class_names is not None else str(label)
        attributes: dict[str, Any] = {}
        mask = None
        x0, y0, x1, y1 = box
        if box_masks is not None and box_masks.crops[i].numel() > 0:
            window = [int(v) for v in box_masks.windows[i].tolist()]
            mask = box_masks.crops[i].numpy()
            if [float(v) for v in window] != [float(v) for v in box]:
                attributes[BOX_ATTRIBUTE] = [float(v) for v in box]
            x0, y0, x1, y1 = window
        # FiftyOne truncates ``width * x`` to a pixel: a corner nudged by NUDGE px lands on its pixel, not before
        relative = [(x0 + NUDGE) / w, (y0 + NUDGE) / h, (x1 - x0) / w, (y1 - y0) / h]
        detections.append(fo.Detection(label=name, bounding_box=relative, mask=mask, confidence=score, **attributes))
    return fo.Detections(detections=detections)


def from_fiftyone(detections: Any, image_size: tuple[int, int], class_names: Sequence[str] | None = None) -> Instances:
    """``Instances`` (masks as ``BoxMasks`` when the detections have masks) of ``fiftyone.Detections`` on an image
    of ``image_size = (height, width)``; each label must be in ``class_names`` (without names: a class number).

    A mask whose size is not its box's pixel size (FiftyOne stretches masks over their boxes) is resized to it
    by nearest neighbour; detections without masks get none when none has one (boxes only).
    """
    h, w = int(image_size[0]), int(image_size[1])
    items = list(detections.detections)
    names = list(class_names) if class_names is not None else None
    boxes, labels, scores, crops, offsets = [], [], [], [], []
    has_mask = any(d.mask is not None for d in items)
    for d in items:
        labels.append(_label_index(d.label, names, d.id))
        scores.append(1.0 if d.confidence is None else float(d.confidence))
        bx, by, bw, bh = (float(v) for v in d.bounding_box)
        x0, y0 = max(min(round(bx * w), w), 0), max(min(round(by * h), h), 0)  # the box's pixel window
        x1, y1 = max(min(round((bx + bw) * w), w), x0), max(min(round((by + bh) * h), h), y0)
        explicit = d[BOX_ATTRIBUTE] if d.has_field(BOX_ATTRIBUTE) else None
        if explicit is not None:
            boxes.append([float(v) for v in explicit])
        elif d.mask is not None:
            boxes.append([float(x0), float(y0), float(x1), float(y1)])
        else:
            boxes.append([bx * w, by * h, (bx + bw) * w, (by + bh) * h])
        if has_mask:
            crops.append(_fit_mask(d.mask, y1 - y0, x1 - x0, d.id))
            offsets.append((x0, y0))
    masks = BoxMasks.from_crops((h, w), crops, offsets) if has_mask else None
    return Instances(
        (h, w),
        boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.int64),
        masks=masks,
        scores=torch.tensor(scores, dtype=torch.float32),
    )


def _label_index(label: str | None, names: list[str] | None, detection_id: str) -> int:
    """The class index of a detection's label (its position in ``names``, or the label read as a number)."""
    if names is not None:
        if label not in names:
            raise ValueError(f"detection {detection_id}: label {label!r} is not one of the class names {names}")
        return names.index(label)
    try:
        return int(str(label))
    except ValueError:
        raise ValueError(f"detection {detection_id}: label {label!r} is not a class number; pass class_names") from None


def _fit_mask(mask: Any, height: int, width: int, detection_id: str) -> torch.Tensor:
    """A detection's mask as bool Tensor[height, width] (its box's pixel size); no mask gives an empty crop."""
    if mask is None or height == 0 or width == 0:
        return torch.zeros((height, width), dtype=torch.bool)
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"detection {detection_id}: mask must be 2-D, got shape {array.shape}")
    crop = torch.from_numpy(array != 0)
    if tuple(crop.shape) != (height, width):  # nearest keeps a mask binary (FiftyOne's own rule resizes linearly)
        resized = torch.nn.functional.interpolate(crop[None, None].float(), size=(height, width), mode="nearest")
        crop = resized[0, 0] > 0.5
    return crop
