"""The one label-map painter: smaller object wins, equal areas the later one; every caller paints alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.data.label_images import masks_to_label_map, rles_to_label_map
from instseg.ops.instance_maps import instances_to_label_map
from instseg.structures import Instances
from instseg.structures.box_masks import BoxMasks
from instseg.structures.label_map import paint_box_masks, paint_label_map, paint_masks
from instseg.structures.masks import masks_to_rles


def reference_paint(masks: np.ndarray) -> np.ndarray:
    """The documented rule, pixel by pixel: among the objects covering a pixel, the smallest wins, ties the last."""
    n, h, w = masks.shape
    areas = masks.reshape(n, -1).sum(1)
    out = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            covering = [i for i in range(n) if masks[i, y, x]]
            if covering:
                out[y, x] = min(covering, key=lambda i: (areas[i], -i)) + 1
    return out


def test_the_rule_on_a_hand_made_stack() -> None:
    masks = np.zeros((4, 6, 6), dtype=bool)
    masks[0] = True  # 36 px, under everything
    masks[1, 1:4, 1:4] = True  # 9 px
    masks[2, 2:5, 2:5] = True  # 9 px, listed later than 1: wins their shared pixels
    masks[3, 0, 0] = True  # 1 px
    painted = paint_label_map(masks)
    expected = reference_paint(masks)
    assert np.array_equal(painted.label_map, expected)
    assert expected[2, 2] == 3 and expected[1, 1] == 2 and expected[0, 0] == 4 and expected[5, 5] == 1
    assert painted.overlap_pixels == int((masks.sum(0) > 1).sum()) and painted.lost == []
    hidden = np.concatenate([masks, masks[1:2]])  # a copy of object 1 listed last takes all of object 1's pixels
    assert paint_label_map(hidden).lost == [1]


@pytest.mark.parametrize("seed", range(6))
def test_every_painter_follows_the_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, h, w = 7, 17, 23
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        y0, x0 = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
        masks[i, y0 : y0 + int(rng.integers(1, 9)), x0 : x0 + int(rng.integers(1, 9))] = True
    masks[5] = masks[2]  # an exact tie: the later one wins
    expected = reference_paint(masks)
    full = torch.from_numpy(masks)
    compact = BoxMasks.from_full(full)
    assert np.array_equal(paint_masks(full).numpy(), expected)
    assert np.array_equal(paint_box_masks(compact).label_map, expected)
    assert paint_box_masks(compact).overlap_pixels == paint_label_map(masks).overlap_pixels
    assert np.array_equal(instances_to_label_map(Instances((h, w), masks=full)).numpy(), expected)
    assert np.array_equal(instances_to_label_map(Instances((h, w), masks=compact)).numpy(), expected)
    assert np.array_equal(masks_to_label_map(masks).label_map, expected)
    boxes = compact.windows.numpy()
    assert np.array_equal(masks_to_label_map(masks, boxes).label_map, expected)
    assert np.array_equal(rles_to_label_map(masks_to_rles(masks), h, w).label_map, expected)


def test_many_objects_use_32_bit_labels() -> None:
    crops = [torch.ones(1, 1, dtype=torch.bool)] * 70000
    windows = torch.tensor([[i % 300, i // 300, i % 300 + 1, i // 300 + 1] for i in range(70000)])
    painted = paint_box_masks(BoxMasks((240, 300), crops, windows), count_overlaps=False)
    assert painted.label_map.dtype == np.uint32 and int(painted.label_map.max()) == 70000 and painted.lost == []
