"""The one RLE codec: crop, pixel-index and label-map encodings byte-identical to pycocotools on random masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from instseg.data.label_images import label_map_to_rles
from instseg.structures.box_masks import BoxMasks
from instseg.structures.masks import box_masks_to_rles, crop_to_rle, mask_to_rle, rle_from_indices


def pycocotools_rle(mask: np.ndarray) -> dict:
    """Reference: pycocotools' own encoder on the full mask, counts as str."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


@pytest.mark.parametrize("seed", range(40))
def test_crop_and_index_encodings_equal_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 70, size=2))
    mask = rng.random((h, w)) < rng.random()  # densities from empty to full
    if seed == 0:
        mask[:] = True
    if seed == 1:
        mask[:] = False
    expected = pycocotools_rle(mask)
    assert mask_to_rle(mask) == expected
    assert rle_from_indices(np.flatnonzero(mask.T.reshape(-1)), h, w) == expected
    ys, xs = np.nonzero(mask)
    if ys.size:
        y0, x0 = int(ys.min()), int(xs.min())
        crop = mask[y0 : ys.max() + 1, x0 : xs.max() + 1]
    else:
        y0 = x0 = 0
        crop = np.zeros((0, 0), bool)
    assert crop_to_rle(crop, x0, y0, h, w) == expected
    decoded = mask_utils.decode({"size": [h, w], "counts": expected["counts"].encode()}).astype(bool)
    assert np.array_equal(decoded, mask)


def test_box_masks_and_label_maps_encode_like_pycocotools() -> None:
    rng = np.random.default_rng(7)
    full = rng.random((5, 40, 33)) > 0.7
    full[3] = False
    expected = [pycocotools_rle(m) for m in full]
    assert box_masks_to_rles(BoxMasks.from_full(torch.from_numpy(full))) == expected
    label_map = np.zeros((40, 33), np.int64)
    label_map[2:9, 3:30] = 4
    label_map[20:39, 0:5] = 9
    ids, rles = label_map_to_rles(label_map)
    assert ids.tolist() == [4, 9]
    assert rles == [pycocotools_rle(label_map == 4), pycocotools_rle(label_map == 9)]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        crop_to_rle(np.ones((3, 3), bool), 8, 0, 10, 10)
    with pytest.raises(ValueError, match="ascending"):
        rle_from_indices(np.array([5, 3]), 4, 4)
    with pytest.raises(ValueError, match="inside"):
        rle_from_indices(np.array([16]), 4, 4)
