"""Run-level RLE access: parsing compressed counts, pixel indices and crops agree with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from instseg.data.rle_runs import compressed_rle_counts, rle_counts, rle_crop, rle_pixel_indices
from instseg.structures.masks import mask_to_rle


def test_counts_indices_and_crops_match_pycocotools() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 70, size=2))
        mask = rng.random((h, w)) > rng.random()
        rle = mask_to_rle(mask)
        runs = compressed_rle_counts(rle["counts"])
        assert runs is not None and runs.sum() == h * w and runs[1::2].sum() == mask.sum()
        assert np.array_equal(rle_pixel_indices(rle), np.flatnonzero(mask.flatten(order="F")))
        crop, x0, y0 = rle_crop(rle)
        if mask.any():
            ys, xs = np.nonzero(mask)
            assert (x0, y0) == (xs.min(), ys.min())
            assert np.array_equal(crop, mask[y0 : ys.max() + 1, x0 : xs.max() + 1])
        else:
            assert crop.shape == (0, 0)


def test_large_counts_and_uncompressed() -> None:
    mask = np.zeros((1000, 1200), dtype=bool)
    mask[999, 1199] = True  # one pixel after ~1.2 M background pixels: a count of several 5-bit chunks
    runs = rle_counts(mask_to_rle(mask))
    assert runs.tolist() == [1000 * 1200 - 1, 1]
    assert rle_pixel_indices({"size": [2, 2], "counts": [1, 2, 1]}).tolist() == [1, 2]


def test_malformed_strings() -> None:
    assert compressed_rle_counts("\x7f\x7f") is None  # characters outside the alphabet
    assert compressed_rle_counts("") is None
    assert compressed_rle_counts("1P") is None  # ends inside a number (continuation bit 0x20 set)
    with pytest.raises(ValueError, match="do not cover the 8x8 image"):
        rle_counts({"size": [8, 8], "counts": "P1"})
    with pytest.raises(ValueError, match="do not cover"):
        rle_counts({"size": [2, 2], "counts": [1, 1]})
