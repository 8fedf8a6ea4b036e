"""Synthetic slides of separated bright discs, shared by the slide tests of the library and of the CLI."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk


def disc_slide(height: int, width: int, count: int, seed: int) -> tuple[np.ndarray, int]:
    """A grey uint8 image [H, W] of separated bright discs (radius 5-12 px) and how many were drawn."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width), dtype=np.uint8)
    occupied = np.zeros((height, width), dtype=bool)
    drawn = 0
    for _ in range(count):
        r = int(rng.integers(5, 13))
        cy, cx = int(rng.integers(r, height - r)), int(rng.integers(r, width - r))
        rr, cc = disk((cy, cx), r + 2, shape=occupied.shape)
        if occupied[rr, cc].any():
            continue
        occupied[rr, cc] = True
        rr, cc = disk((cy, cx), r, shape=occupied.shape)
        image[rr, cc] = 255
        drawn += 1
    return image, drawn
