"""Box-cropped masks: round trips against full-frame masks, and ``Instances`` behaving alike in both forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.structures import Instances
from instseg.structures.box_masks import BoxMasks


def random_masks(seed: int, n: int = 6, h: int = 31, w: int = 45) -> torch.Tensor:
    """``n`` random blobs (some empty, some touching the border) as full masks Tensor[n, h, w]."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        if i == 2:
            continue  # one empty mask
        y0, x0 = int(rng.integers(0, h - 1)), int(rng.integers(0, w - 1))
        y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
        masks[i, y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) > 0.4
    return torch.from_numpy(masks)


@pytest.mark.parametrize("seed", range(5))
def test_from_full_to_full_round_trip_stores_only_the_boxes(seed: int) -> None:
    full = random_masks(seed)
    compact = BoxMasks.from_full(full)
    assert torch.equal(compact.to_full(), full)
    assert torch.equal(compact.areas(), full.flatten(1).sum(1))
    assert compact.stored_pixels() == int(compact.windows[:, 2:].sub(compact.windows[:, :2]).prod(1).sum())
    assert compact.stored_pixels() <= full.numel()
    window = (3, 4, 30, 20)
    for i in range(len(full)):
        assert torch.equal(compact.crop(i, window), full[i, 4:20, 3:30])


def test_windows_are_checked() -> None:
    with pytest.raises(ValueError, match="outside"):
        BoxMasks((4, 4), [torch.ones(2, 2, dtype=torch.bool)], torch.tensor([[3, 0, 5, 2]]))
    with pytest.raises(ValueError, match="crop 0"):
        BoxMasks((4, 4), [torch.ones(2, 3, dtype=torch.bool)], torch.tensor([[0, 0, 2, 2]]))


def test_from_crops_trims_to_the_tight_box() -> None:
    crop = torch.zeros(5, 5, dtype=torch.bool)
    crop[1:3, 2:4] = True
    masks = BoxMasks.from_crops((10, 10), [crop, torch.zeros(3, 3, dtype=torch.bool)], [(4, 5), (0, 0)])
    assert masks.windows.tolist() == [[6, 6, 8, 8], [0, 0, 0, 0]]
    assert masks.to_full()[0].nonzero().tolist() == [[6, 6], [6, 7], [7, 6], [7, 7]]
    assert masks.boxes().tolist() == [[6.0, 6.0, 8.0, 8.0], [0.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("seed", range(3))
def test_instances_agree_in_both_forms(seed: int) -> None:
    full = random_masks(seed)
    scores = torch.linspace(0.9, 0.1, len(full))
    a = Instances((31, 45), labels=torch.arange(len(full)) % 2, masks=full, scores=scores)
    b = a.compact()
    assert b.is_compact and not a.is_compact and b.has_masks
    assert torch.equal(a.boxes, b.boxes) and torch.equal(b.masks, full)  # type: ignore[arg-type]
    assert a.to_coco(3, [5, 7]) == b.to_coco(3, [5, 7])
    for index in (1, -1, slice(1, 4), torch.tensor([True, False, True, False, True, True]), [4, 0]):
        assert torch.equal(a[index].masks, b[index].masks)  # type: ignore[arg-type, index]
        assert b[index].is_compact
    assert torch.equal(a.sort_by_score().masks, b.sort_by_score().masks)  # type: ignore[arg-type]
    joined = Instances.cat([a, b[0:2]])
    assert joined.is_compact and torch.equal(joined.masks, torch.cat([full, full[:2]]))  # type: ignore[arg-type]
    assert torch.equal(b.to("cpu").masks, full)  # type: ignore[arg-type]
    for size in [(62, 90), (13, 97), (31, 45), (7, 5)]:
        assert torch.equal(a.resized(size).masks, b.resized(size).masks), size  # type: ignore[arg-type]
        assert torch.equal(a.resized(size).boxes, b.resized(size).boxes), size


def test_box_only_and_empty_instances() -> None:
    empty = Instances.empty((8, 9)).compact()
    assert empty.is_compact and len(empty) == 0 and empty.masks.shape == (0, 8, 9)  # type: ignore[union-attr]
    assert empty.to_coco(1) == []
    boxes_only = Instances((8, 9), boxes=torch.tensor([[1.0, 1.0, 3.0, 4.0]]))
    assert not boxes_only.has_masks and boxes_only.compact() is boxes_only and boxes_only.box_masks is None
    with pytest.raises(ValueError, match="box masks are for"):
        Instances((5, 5), masks=BoxMasks.empty((6, 6)))


@pytest.mark.parametrize("seed", range(4))
def test_mask_windows_equal_masks_to_boxes(seed: int) -> None:
    from instseg.ops.boxes import masks_to_boxes
    from instseg.structures.box_masks import mask_windows

    full = random_masks(seed, n=9, h=17 + seed, w=29 - seed)
    assert torch.equal(mask_windows(full), masks_to_boxes(full).long())
    assert mask_windows(torch.zeros((0, 5, 5), dtype=torch.bool)).shape == (0, 4)
