"""``Instances`` <-> ``supervision.Detections`` (the ``supervision`` extra), masks kept compact where both allow.

supervision's ``CompactMask`` stores each mask as the run lengths of its box crop, as instseg's ``BoxMasks``
stores the crop itself, so a conversion either way never builds an N x H x W stack: crops go out through
full-frame COCO RLEs encoded from the crops alone (``CompactMask.from_coco_rle``, supervision's public
constructor) and come back through ``CompactMask.crop``. Dense ``Detections.mask`` arrays work as well.

Boxes are passed as they are (``xyxy``, pixels); labels become ``class_id``, scores ``confidence``, and with
``class_names`` each detection's ``data["class_name"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from instseg.structures import Instances
from instseg.structures.box_masks import BoxMasks


def to_detections(instances: Instances, class_names: Sequence[str] | None = None, compact: bool = True) -> Any:
    """``supervision.Detections`` of ``instances`` (masks as a ``CompactMask`` when ``compact``, else dense)."""
    import supervision as sv

    from instseg.structures.masks import box_masks_to_rles

    instances = instances.to("cpu")
    n = len(instances)
    labels = instances.labels.numpy().astype(int)
    xyxy = instances.boxes.numpy().astype(np.float32).reshape(n, 4)
    mask: Any = None
    box_masks = instances.box_masks
    if box_masks is not None:
        if compact:
            windows = box_masks.windows.numpy()
            # CompactMask crops use inclusive corners (x2 = x1 + width - 1); windows have exclusive ones
            inclusive = np.stack([windows[:, 0], windows[:, 1], windows[:, 2] - 1, windows[:, 3] - 1], 1)
            mask = sv.CompactMask.from_coco_rle(
                box_masks_to_rles(box_masks), inclusive.astype(np.float32), instances.image_size
            )
        else:
            mask = box_masks.to_full().numpy()
    data: dict[str, Any] = {}
    if class_names is not None:
        if n and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(f"labels {sorted(set(labels.tolist()))} do not all have a name in {list(class_names)}")
        data["class_name"] = np.array([class_names[label] for label in labels], dtype=object).reshape(n)
    scores = instances.scores.numpy().astype(np.float32) if instances.scores is not None else None
    return sv.Detections(xyxy=xyxy, mask=mask, confidence=scores, class_id=labels, data=data)


def from_detections(detections: Any, image_size: tuple[int, int] | None = None) -> Instances:
    """``Instances`` of ``supervision.Detections`` (a ``CompactMask`` stays compact as ``BoxMasks``).

    ``image_size`` (height, width) is needed only when the detections carry no mask; ``class_id`` None means
    label 0.
    """
    import supervision as sv

    n = len(detections)
    mask = detections.mask
    if mask is not None:
        size = tuple(int(s) for s in (mask.image_shape if isinstance(mask, sv.CompactMask) else mask.shape[1:]))
        if image_size is not None and tuple(image_size) != size:
            raise ValueError(f"image_size {tuple(image_size)} differs from the masks' size {size}")
        image_size = (size[0], size[1])
    if image_size is None:
        raise ValueError("detections without masks need image_size=(height, width)")
    boxes = torch.as_tensor(np.asarray(detections.xyxy, dtype=np.float32).reshape(n, 4))
    class_id = detections.class_id
    labels = torch.as_tensor(np.zeros(n, np.int64) if class_id is None else np.asarray(class_id, np.int64))
    scores = None if detections.confidence is None else torch.as_tensor(np.asarray(detections.confidence, np.float32))
    masks: torch.Tensor | BoxMasks | None = None
    if isinstance(mask, sv.CompactMask):
        crops = [torch.from_numpy(np.ascontiguousarray(mask.crop(i))) for i in range(n)]
        offsets = [(int(x), int(y)) for x, y in np.asarray(mask.offsets).reshape(n, 2)]
        masks = BoxMasks.from_crops(image_size, crops, offsets)
    elif mask is not None:
        masks = torch.from_numpy(np.asarray(mask, dtype=bool))
    return Instances(image_size, boxes=boxes, labels=labels, masks=masks, scores=scores)
