"""Image appearance (dsb2018's split rule) and the per-image repeat counts that oversample rare appearances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_coco import make_coco_dir

from instseg.data.appearance import appearance_repeats, check_repeat_factors, image_appearance
from instseg.data.coco import CocoDataset
from instseg.data.crop_sampling import RandomCropDataset


def test_appearance_rule_colour_then_mean_brightness() -> None:
    grey = np.full((4, 5, 3), 100, np.uint8)
    assert image_appearance(grey) == "gray_dark"  # a mean of exactly 100 is not above the threshold
    grey[0, 0] = 104  # mean rises above 100, channels still equal
    assert image_appearance(grey) == "gray_bright"
    tinted = grey.copy()
    tinted[3, 4, 2] = 0  # one pixel whose channels differ makes the image colour, whatever its brightness
    assert image_appearance(tinted) == "color"
    assert image_appearance(np.full((3, 3), 200, np.uint8)) == "gray_bright"  # a single-channel array
    assert image_appearance(np.zeros((3, 3, 3), np.uint8)) == "gray_dark"


def test_repeat_counts_follow_each_image_appearance(tmp_path: Path) -> None:
    ds = CocoDataset(make_coco_dir(tmp_path))  # a.png random RGB, b.png random grey (mean ~128), c.png black
    repeats, counts = appearance_repeats(ds, {"color": 3, "gray_bright": 2})
    assert repeats == [3, 2, 1] and counts == {"color": 1, "gray_bright": 1, "gray_dark": 1}
    crops = RandomCropDataset(ds, 16)
    assert appearance_repeats(crops, {"gray_dark": 4})[0] == [1, 1, 4]  # a crop wrapper reads its data set


@pytest.mark.parametrize(
    ("factors", "message"),
    [
        ({"colour": 2}, r"unknown appearance\(s\) \['colour'\]"),
        ({"color": 0}, "whole numbers >= 1"),
        ({"color": 1.5}, "whole numbers >= 1"),
        ({"color": True}, "whole numbers >= 1"),
    ],
)
def test_bad_repeat_factors_are_refused(factors: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_repeat_factors(factors)
