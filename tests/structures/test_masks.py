"""Mask encodings: RLE and polygon round trips, and ``mask_to_polygons`` giving back masks through pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy import ndimage

from instseg.structures.masks import (
    mask_to_polygons,
    mask_to_rle,
    masks_to_rles,
    merge_polygons,
    polygons_to_mask,
    rle_area,
    rle_to_mask,
    segmentation_to_mask,
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _blob(rng: np.random.Generator, height: int, width: int, sigma: float, keep: float) -> np.ndarray:
    """A random smooth blob mask (several parts and holes happen) [height, width]."""
    noise = ndimage.gaussian_filter(rng.random((height, width)), sigma)
    return noise > np.quantile(noise, 1 - keep)


def _rasterise(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    return polygons_to_mask(polygons, height, width) if polygons else np.zeros((height, width), dtype=bool)


def test_rle_round_trip_compressed_and_uncompressed() -> None:
    mask = np.zeros((7, 5), dtype=bool)
    mask[1:4, 2:5] = True
    mask[6, 0] = True
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [7, 5]
    assert np.array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == 10
    # uncompressed: column-major run lengths starting with background
    flat = mask.flatten(order="F").astype(int)
    runs, current, count = [], 0, 0
    for v in flat:
        if v == current:
            count += 1
        else:
            runs.append(count)
            current, count = v, 1
    runs.append(count)
    uncompressed = {"size": [7, 5], "counts": runs}
    assert np.array_equal(rle_to_mask(uncompressed), mask)
    assert rle_area(uncompressed) == 10


def test_masks_to_rles_matches_single_encoding() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 9, 11)) > 0.5
    rles = masks_to_rles(masks)
    assert [r["counts"] for r in rles] == [mask_to_rle(m)["counts"] for m in masks]
    assert masks_to_rles(np.zeros((0, 4, 4), dtype=bool)) == []


def test_bad_rle_raises() -> None:
    with pytest.raises(ValueError, match="sum to"):
        rle_to_mask({"size": [2, 2], "counts": [1, 1]})
    with pytest.raises(ValueError, match="'size' and 'counts'"):
        rle_to_mask({"counts": "abc"})


def test_polygons_to_mask_uses_pixel_edges() -> None:
    # pycocotools fills pixel (x, y) when its centre (x + .5, y + .5) is inside: a 0..4 square covers 4x4 pixels
    mask = polygons_to_mask([[0, 0, 4, 0, 4, 4, 0, 4]], 6, 6)
    assert mask.sum() == 16 and mask[:4, :4].all()
    with pytest.raises(ValueError, match="at least 3"):
        polygons_to_mask([[0, 0, 1, 1]], 4, 4)


def test_segmentation_to_mask_accepts_every_coco_form() -> None:
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:3, 2:6] = True
    poly = [[2, 1, 6, 1, 6, 3, 2, 3]]
    assert np.array_equal(segmentation_to_mask(poly, 6, 8), mask)
    assert np.array_equal(segmentation_to_mask(mask_to_rle(mask), 6, 8), mask)
    with pytest.raises(ValueError, match="differs from the image size"):
        segmentation_to_mask(mask_to_rle(mask), 8, 6)
    with pytest.raises(ValueError, match="polygon list or an RLE dict"):
        segmentation_to_mask("nope", 6, 8)


def test_mask_to_polygons_single_pixel_and_empty() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    assert mask_to_polygons(mask) == []
    mask[2, 3] = True
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 1 and len(polygons[0]) >= 6
    xy = np.asarray(polygons[0]).reshape(-1, 2)
    assert xy[:, 0].min() >= 3 and xy[:, 0].max() <= 4 and xy[:, 1].min() >= 2 and xy[:, 1].max() <= 3
    assert np.array_equal(_rasterise(polygons, 5, 5), mask)


def test_mask_to_polygons_keeps_holes_and_parts() -> None:
    mask = np.zeros((14, 14), dtype=bool)
    mask[1:10, 1:10] = True
    mask[3:6, 3:7] = False  # a hole
    mask[4, 4] = True  # an island inside the hole: its own part
    mask[12, 12] = True  # a far part
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 3
    assert np.array_equal(_rasterise(polygons, 14, 14), mask)


def test_mask_to_polygons_diagonal_and_border_pixels() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = mask[1, 1] = mask[3, 3] = mask[2, 3] = True  # diagonal neighbours are separate parts
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 3
    assert np.array_equal(_rasterise(polygons, 4, 4), mask)
    xy = np.concatenate([np.asarray(p).reshape(-1, 2) for p in polygons])
    assert xy.min() >= 0 and xy.max() <= 4  # the polygon of a border pixel stays inside the image
    full = np.ones((3, 5), dtype=bool)
    assert np.array_equal(_rasterise(mask_to_polygons(full), 3, 5), full)


def test_mask_to_polygons_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        mask_to_polygons(np.zeros((2, 3, 3), dtype=bool))


@pytest.mark.parametrize(("size", "sigma", "keep"), [(12, 1.0, 0.3), (24, 1.5, 0.4), (64, 2.5, 0.5), (40, 0.7, 0.6)])
def test_mask_to_polygons_random_blobs_rasterise_back(size: int, sigma: float, keep: float) -> None:
    rng = np.random.default_rng(size)
    for _ in range(40):
        h, w = size + int(rng.integers(0, 7)), size + int(rng.integers(0, 7))
        mask = _blob(rng, h, w, sigma, keep)
        back = _rasterise(mask_to_polygons(mask), h, w)
        assert _iou(back, mask) >= 0.95
        assert np.array_equal(back, mask)  # on pixel edges the trace is exact


def test_mask_to_polygons_small_nuclei_exact_even_merged() -> None:
    rng = np.random.default_rng(7)
    for _ in range(100):
        mask = np.zeros((16, 16), dtype=bool)
        cy, cx = rng.uniform(5, 11, size=2)
        ry, rx = rng.uniform(1.5, 3.5, size=2)
        yy, xx = np.mgrid[:16, :16]
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1  # ~10-40 px ellipses
        mask[rng.integers(0, 16), rng.integers(0, 16)] = True  # and a stray pixel somewhere
        polygons = mask_to_polygons(mask)
        assert np.array_equal(_rasterise(polygons, 16, 16), mask)
        assert np.array_equal(_rasterise([merge_polygons(polygons)], 16, 16), mask)  # one bridged polygon (YOLO)


def test_mask_to_polygons_tolerance_simplifies() -> None:
    yy, xx = np.mgrid[:80, :80]
    mask = (yy - 40) ** 2 + (xx - 40) ** 2 <= 30**2
    exact, simple = mask_to_polygons(mask), mask_to_polygons(mask, tolerance=1.0)
    assert len(simple[0]) < len(exact[0]) / 2
    assert _iou(_rasterise(simple, 80, 80), mask) >= 0.97


def test_merge_polygons_bridges_parts_and_holes() -> None:
    a = [0, 0, 3, 0, 3, 3, 0, 3]
    b = [5, 5, 8, 5, 8, 8, 5, 8]
    merged = merge_polygons([a, b])
    assert len(merged) == len(a) + len(b) + 4  # two bridge end points repeated
    expected = polygons_to_mask([a, b], 10, 10)
    assert np.array_equal(polygons_to_mask([merged], 10, 10), expected)
    outer, hole = [0, 0, 8, 0, 8, 8, 0, 8], [3, 3, 5, 3, 5, 5, 3, 5]
    ring = polygons_to_mask([merge_polygons([outer, hole])], 10, 10)
    assert ring.sum() == 64 - 4 and not ring[3:5, 3:5].any()
    assert merge_polygons([]) == []
    assert merge_polygons([a]) == [float(v) for v in a]


def test_polygon_area_matches_pycocotools_area() -> None:
    rng = np.random.default_rng(3)
    mask = _blob(rng, 30, 30, 2.0, 0.4)
    rles = mask_utils.frPyObjects(mask_to_polygons(mask), 30, 30)
    assert int(mask_utils.area(mask_utils.merge(rles))) == int(mask.sum())
