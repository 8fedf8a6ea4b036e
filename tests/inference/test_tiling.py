"""Tiled prediction: stitched tiles agree with one whole-image pass, kept as box-cropped masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from skimage.draw import disk
from skimage.measure import label as connected_components

from instseg.inference.tiling import predict_tiled, tile_starts
from instseg.structures import Instances


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


def test_tiled_prediction_matches_untiled() -> None:
    image = disc_image(600, 120, seed=3)
    whole = components_predictor(image)
    tiled = predict_tiled(components_predictor, image, tile=160, overlap=64)
    assert tiled.is_compact and len(tiled) == len(whole)
    # every object once, with exactly its whole-image mask: match by box, then compare the full masks
    order_tiled = sorted(range(len(tiled)), key=lambda i: tiled.boxes[i].tolist())
    order_whole = sorted(range(len(whole)), key=lambda i: whole.boxes[i].tolist())
    assert torch.equal(tiled.boxes[order_tiled], whole.boxes[order_whole])
    assert torch.equal(tiled.masks[order_tiled], whole.masks[order_whole])  # type: ignore[index]
    assert tiled.box_masks is not None and tiled.box_masks.stored_pixels() < len(tiled) * 30 * 30
    results = tiled.to_coco(image_id=7)
    assert len(results) == len(whole) and all(r["image_id"] == 7 for r in results)
    by_box = {tuple(r["bbox"]): r["segmentation"] for r in whole.to_coco(7)}
    assert all(by_box[tuple(r["bbox"])] == r["segmentation"] for r in results)


def test_tiled_prediction_of_an_empty_image() -> None:
    tiled = predict_tiled(components_predictor, np.zeros((300, 300, 3), np.uint8), tile=128, overlap=32)
    assert len(tiled) == 0 and tiled.to_coco(1) == [] and tiled.masks.shape == (0, 300, 300)  # type: ignore[union-attr]


def test_overlapping_objects_keep_their_whole_masks() -> None:
    """Two objects sharing pixels both survive tiling intact (a label map could hold only one of them)."""

    def two_discs(tile_image: np.ndarray) -> Instances:
        h, w = tile_image.shape[:2]
        masks = torch.zeros((2, h, w), dtype=torch.bool)
        bright = torch.from_numpy(tile_image[..., 0] > 127)
        masks[0] = bright
        masks[1, : h // 2] = bright[: h // 2]  # the upper half of the same blob: fully overlapping
        keep = masks.flatten(1).any(1)
        return Instances((h, w), masks=masks[keep], scores=torch.tensor([0.9, 0.8])[keep])

    image = np.zeros((200, 200, 3), np.uint8)
    rr, cc = disk((60, 60), 10, shape=(200, 200))
    image[rr, cc] = 255
    tiled = predict_tiled(two_discs, image, tile=128, overlap=48)
    assert len(tiled) == 2
    areas = sorted(tiled.mask_areas().tolist())
    assert areas[1] == len(rr) and 0 < areas[0] < len(rr)


def test_fragments_at_seams_are_dropped_only_when_seen_whole_elsewhere() -> None:
    from instseg.inference.tiling import _duplicated_fragments, tile_cores
    from instseg.structures.box_masks import BoxMasks

    full = torch.zeros((4, 40, 40), dtype=torch.bool)
    full[0, 5:20, 5:20] = True  # whole object, kept by its own tile
    full[1, 5:20, 12:20] = True  # the part of it that a neighbour tile cut off at a seam: all inside object 0
    full[2, 25:35, 25:35] = True  # an object at a seam with nobody else there
    full[3, 5:20, 17:30] = True  # at a seam, mostly outside object 0 (3 of 13 columns shared)
    at_seam = torch.tensor([False, True, True, True])
    assert _duplicated_fragments(BoxMasks.from_full(full), at_seam).tolist() == [False, True, False, False]
    assert tile_cores([0, 96, 192, 240], 160, 400) == [(0, 128), (128, 224), (224, 296), (296, 400)]
