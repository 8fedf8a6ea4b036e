"""Polygon detections (PolarMask's files) rasterised by the runtime: hand-made polygons, empty ones dropped."""

from __future__ import annotations

import numpy as np
from instseg_runtime.polygon_detections import polygon_instances


def test_polygons_become_masks_with_tight_boxes_and_empty_ones_are_dropped() -> None:
    square = np.array([[1.5, 1.5], [1.5, 4.5], [4.5, 4.5], [4.5, 1.5]])  # (y, x): pixel centres 2..4 inside
    sliver = np.array([[7.1, 7.1], [7.1, 7.3], [7.3, 7.3], [7.3, 7.1]])  # holds no pixel centre
    outputs = {
        "vertices": np.stack([square, sliver]).astype(np.float32),
        "scores": np.array([0.9, 0.8], np.float32),
        "labels": np.array([1, 0], np.int64),
    }
    found = polygon_instances(outputs, (8, 10))
    assert len(found) == 1 and found.masks.shape == (1, 8, 10)
    expected = np.zeros((8, 10), bool)
    expected[2:5, 2:5] = True
    assert (found.masks[0] == expected).all()
    assert found.boxes.tolist() == [[2.0, 2.0, 5.0, 5.0]] and found.labels.tolist() == [1]
    assert np.allclose(found.scores, [0.9])
    none = polygon_instances({k: v[:0] for k, v in outputs.items()}, (8, 10))
    assert len(none) == 0 and none.masks.shape == (0, 8, 10)
