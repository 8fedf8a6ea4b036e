"""Tiled prediction: RLEs from crops are exact, and stitched tiles agree with one whole-image pass."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from skimage.draw import disk
from skimage.measure import label as connected_components

from instseg.inference.tiling import crop_to_rle, predict_tiled, tile_starts
from instseg.structures import Instances
from instseg.structures.masks import mask_to_rle


def components_predictor(image: np.ndarray) -> Instances:
    """A stand-in model: every bright connected blob is one object (tile-independent by construction)."""
    labels = connected_components(image[..., 0] > 127)
    n = int(labels.max())
    masks = torch.from_numpy(labels[None] == np.arange(1, n + 1)[:, None, None])
    return Instances(labels.shape, masks=masks, scores=torch.ones(n))


def disc_image(size: int, count: int, seed: int) -> np.ndarray:
    """An image with ``count`` separated bright discs (radius 6-14 px)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), dtype=np.uint8)
    occupied = np.zeros((size, size), dtype=bool)
    for _ in range(count):
        r = int(rng.integers(6, 15))
        cy, cx = rng.integers(r, size - r, size=2)
        rr, cc = disk((cy, cx), r + 2, shape=occupied.shape)
        if occupied[rr, cc].any():
            continue
        occupied[rr, cc] = True
        rr, cc = disk((cy, cx), r, shape=occupied.shape)
        image[rr, cc] = 255
    return image


def test_tile_starts_cover_the_image_with_overlap() -> None:
    starts = tile_starts(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 64 for a, b in itertools.pairwise(starts))
    assert tile_starts(100, 256, 64) == [0]
    with pytest.raises(ValueError, match="larger than the overlap"):
        tile_starts(1000, 64, 64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crop_to_rle_equals_full_encoding(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 37, 53
    y0, x0 = int(rng.integers(0, 20)), int(rng.integers(0, 30))
    crop = rng.random((int(rng.integers(1, h - y0)), int(rng.integers(1, w - x0)))) > 0.5
    full = np.zeros((h, w), dtype=bool)
    full[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    ours = crop_to_rle(crop, y0, x0, h, w)
    assert ours == mask_to_rle(full)
    assert np.array_equal(mask_utils.decode({"size": [h, w], "counts": ours["counts"].encode()}).astype(bool), full)


def test_tiled_prediction_matches_untiled() -> None:
    image = disc_image(600, 120, seed=3)
    whole = components_predictor(image)
    tiled = predict_tiled(components_predictor, image, tile=160, overlap=64)
    assert len(tiled) == len(whole)
    ours = {tuple(b) for b in tiled.boxes.astype(int).tolist()}
    theirs = {tuple(b) for b in whole.boxes.numpy().astype(int).tolist()}
    assert ours == theirs
    stitched = tiled.to_instances()
    assert stitched.masks is not None and int(stitched.masks.sum()) == int(whole.masks.sum())  # type: ignore[union-attr]
    results = tiled.to_coco(image_id=7)
    assert len(results) == len(whole) and all(r["image_id"] == 7 for r in results)


def test_tiled_prediction_of_an_empty_image() -> None:
    tiled = predict_tiled(components_predictor, np.zeros((300, 300, 3), np.uint8), tile=128, overlap=32)
    assert len(tiled) == 0 and tiled.to_coco(1) == [] and tiled.to_instances().masks.shape == (0, 300, 300)  # type: ignore[union-attr]
