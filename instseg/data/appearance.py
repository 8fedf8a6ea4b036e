"""The imaging appearance of a microscopy image, and per-image repeat counts that oversample rare appearances.

Mixed microscopy sets are dominated by one kind of image: dsb2018's train split holds 395 grey fluorescence
images, 77 colour (H&E, colour brightfield) and 11 grey brightfield ones, and a model trained on it is weakest on
the rare kinds. Repeating their images inside every epoch evens this out. Detectron2's repeat-factor sampling
does this per category; nucleus sets have one category, so here the unit is the image's appearance.

The appearance rule is dsb2018's own split rule (see its data README): ``color`` when the three channels differ
anywhere, else ``gray_bright`` when the mean intensity is above 100 (brightfield: dark nuclei on a light
background), else ``gray_dark`` (fluorescence: light nuclei on a dark background).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

APPEARANCES = ("gray_dark", "gray_bright", "color")
BRIGHT_MEAN = 100.0


def image_appearance(pixels: np.ndarray) -> str:
    """``"color"``, ``"gray_bright"`` or ``"gray_dark"`` for an HxWx3 (or HxW) uint8 image."""
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        if not (np.array_equal(red, green) and np.array_equal(green, blue)):
            return "color"
    return "gray_bright" if float(pixels.mean()) > BRIGHT_MEAN else "gray_dark"


def check_repeat_factors(factors: Mapping[str, Any], source: str = "data.repeat_by_appearance") -> None:
    """Raise ``ValueError`` unless every key is an appearance and every value a whole count >= 1."""
    unknown = sorted(set(factors) - set(APPEARANCES))
    if unknown:
        raise ValueError(f"{source}: unknown appearance(s) {unknown}; use {list(APPEARANCES)}")
    bad = {k: v for k, v in factors.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f"{source}: repeat counts must be whole numbers >= 1, got {bad}")


def appearance_repeats(dataset: Any, factors: Mapping[str, int]) -> tuple[list[int], Counter[str]]:
    """Per-image repeat counts (``factors[appearance]``, 1 for unnamed appearances) and the image count of each
    appearance; ``dataset`` is a ``CocoDataset`` or a wrapper of one with ``.dataset`` (random crops)."""
    check_repeat_factors(factors)
    source = getattr(dataset, "dataset", dataset)
    kinds = [image_appearance(source.load_image(i)) for i in range(len(source))]
    return [int(factors.get(kind, 1)) for kind in kinds], Counter(kinds)
