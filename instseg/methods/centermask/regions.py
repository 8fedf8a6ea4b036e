"""The regions CenterMask's mask head learns on: every object's box, plus FCOS's own predicted boxes at the
object's positive points where they overlap it well."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou

from instseg.heads.fcos import valid_objects
from instseg.ops.fcos import decode_ltrb
from instseg.structures import Instances


def training_regions(
    points: Tensor,
    box_ltrb: Tensor,
    matched: Tensor,
    target: Instances,
    max_regions: int,
    min_iou: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """One image's mask-training regions Tensor[R, 4] (resized-image pixels) and the object index of each
    Tensor[R] int64 (into ``target``'s objects).

    The ground-truth boxes teach the mask head from the first step, when the detector's boxes are still noise;
    the predicted boxes of positive points (``matched`` >= 0; ``box_ltrb`` Tensor[P, 4] detached here) with IoU
    >= ``min_iou`` to their object teach it the boxes it will see at test time, as the paper trains on the
    detector's proposals. At most ``max_regions``: the objects first, then a random sample of predicted boxes.
    """
    objects = valid_objects(target).to(points.device)
    boxes = target.boxes.to(points.device)
    if len(objects) > max_regions:
        objects = objects[torch.randperm(len(objects), device=points.device)[:max_regions]]
    pos = torch.nonzero(matched >= 0).squeeze(1)
    predicted = decode_ltrb(points[pos], box_ltrb[pos].detach())
    owners = matched[pos]
    if len(pos):
        overlap = box_iou(predicted, boxes[owners]).diagonal()  # each box against its own object
        good = torch.nonzero(overlap >= min_iou).squeeze(1)
        good = good[torch.randperm(len(good), device=points.device)[: max_regions - len(objects)]]
        predicted, owners = predicted[good], owners[good]
    return torch.cat([boxes[objects], predicted]), torch.cat([objects, owners])
