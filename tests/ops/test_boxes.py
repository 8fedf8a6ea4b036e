"""Box conversions (xyxy with exclusive right edge == COCO xywh) and mask boxes against pycocotools."""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils

from instseg.ops.boxes import box_area, clip_boxes, masks_to_boxes, scale_boxes, xywh_to_xyxy, xyxy_to_xywh


def test_xywh_xyxy_round_trip() -> None:
    xywh = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, 0.0, 2.5]])
    xyxy = xywh_to_xyxy(xywh)
    assert xyxy.tolist() == [[1.0, 2.0, 4.0, 6.0], [0.5, 0.0, 0.5, 2.5]]
    assert torch.equal(xyxy_to_xywh(xyxy), xywh)


def test_masks_to_boxes_matches_coco_bbox_and_handles_empty() -> None:
    rng = np.random.default_rng(0)
    masks = np.zeros((5, 12, 9), dtype=bool)
    for i in range(4):
        y0, x0 = rng.integers(0, 6), rng.integers(0, 4)
        masks[i, y0 : y0 + rng.integers(1, 6), x0 : x0 + rng.integers(1, 5)] = True
    boxes = masks_to_boxes(torch.from_numpy(masks))
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    coco = torch.from_numpy(mask_utils.toBbox(rles)).float()  # [N, 4] xywh
    assert torch.equal(xyxy_to_xywh(boxes), coco)
    assert boxes[4].tolist() == [0, 0, 0, 0]
    assert masks_to_boxes(torch.zeros((0, 3, 3), dtype=torch.bool)).shape == (0, 4)


def test_single_pixel_box_has_unit_size() -> None:
    mask = torch.zeros((1, 4, 4), dtype=torch.bool)
    mask[0, 3, 2] = True
    assert masks_to_boxes(mask).tolist() == [[2, 3, 3, 4]]


def test_clip_area_scale() -> None:
    boxes = torch.tensor([[-2.0, 1.0, 12.0, 30.0], [3.0, 3.0, 1.0, 5.0]])
    clipped = clip_boxes(boxes, (20, 10))
    assert clipped.tolist() == [[0.0, 1.0, 10.0, 20.0], [3.0, 3.0, 1.0, 5.0]]
    assert boxes[0, 0] == -2.0  # input untouched
    assert box_area(clipped).tolist() == [190.0, 0.0]  # inverted box counts as zero
    assert scale_boxes(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), (2.0, 0.5)).tolist() == [[2.0, 1.0, 6.0, 2.0]]
