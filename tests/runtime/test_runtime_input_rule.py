"""The runtime's numpy input rule equals instseg's PyTorch one: conversion to RGB uint8, resize rule, resize."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from instseg_runtime.image import resize_image, resized_shape, to_rgb_uint8

from instseg.data.image_io import to_rgb_uint8 as torch_side_to_rgb
from instseg.ops.resize import resized_shape as torch_side_shape


@pytest.mark.parametrize(
    ("shape", "size"),
    [((128, 160), (440, 550)), ((640, 640), (550, 550)), ((300, 200), (97, 65)), ((50, 50), (50, 80))],
)
def test_resize_matches_torch_antialiased_bilinear(shape: tuple[int, int], size: tuple[int, int]) -> None:
    image = np.random.default_rng(0).uniform(0, 255, (*shape, 3)).astype(np.float32)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    expected = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)
    np.testing.assert_allclose(resize_image(image, size), expected[0].permute(1, 2, 0).numpy(), atol=0.02)


def test_resize_rule_and_conversion_match_instseg() -> None:
    # one copy of each rule: instseg imports the runtime's
    assert torch_side_to_rgb is to_rgb_uint8 and torch_side_shape is resized_shape
    for h, w in [(1, 1), (96, 128), (520, 696), (2048, 100)]:
        for lo, hi in [(None, None), (550, 550), (800, 1333), (None, 512)]:
            assert resized_shape(h, w, lo, hi) == torch_side_shape(h, w, lo, hi)
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 255, (20, 30, 3), dtype=np.uint8),
        rng.integers(0, 4000, (20, 30), dtype=np.uint16),
        rng.random((20, 30, 4)).astype(np.float32),
        rng.random((20, 30)) > 0.5,
        np.full((5, 5), 7, np.uint16),
    ]
    for image in images:
        np.testing.assert_array_equal(to_rgb_uint8(image), torch_side_to_rgb(image))
    with pytest.raises(ValueError, match="expected an image"):
        to_rgb_uint8(np.zeros((4, 4, 5), np.uint8))
