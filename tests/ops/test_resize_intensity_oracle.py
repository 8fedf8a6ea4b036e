"""The resize rule and percentile normalisation against hand-computed values and their definitions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from instseg.ops.intensity import percentile_normalize
from instseg.ops.mask_downsampling import area_downsample_masks
from instseg.ops.resize import resized_shape


def test_resized_shape_by_hand() -> None:
    assert resized_shape(300, 600, 200, None) == (200, 400)  # short side to 200
    assert resized_shape(300, 600, 200, 300) == (150, 300)  # then the long side capped at 300
    assert resized_shape(600, 300, None, 450) == (450, 225)  # cap only
    assert resized_shape(100, 120, None, 450) == (100, 120)  # a cap never enlarges
    assert resized_shape(300, 600, None, None) == (300, 600)
    assert resized_shape(1, 1000, 1, 10) == (1, 10)  # never below one pixel
    assert resized_shape(2, 1000, None, 10) == (1, 10)


@settings(max_examples=80, deadline=None, database=None)
@given(
    h=st.integers(1, 3000),
    w=st.integers(1, 3000),
    min_size=st.one_of(st.none(), st.integers(1, 1500)),
    max_size=st.one_of(st.none(), st.integers(1, 3000)),
)
def test_resized_shape_follows_its_definition(h: int, w: int, min_size: int | None, max_size: int | None) -> None:
    scale = 1.0 if min_size is None else min_size / min(h, w)
    if max_size is not None and max(h, w) * scale > max_size:
        scale = max_size / max(h, w)
    assert resized_shape(h, w, min_size, max_size) == (max(1, round(h * scale)), max(1, round(w * scale)))
    rh, rw = resized_shape(h, w, min_size, max_size)
    if max_size is not None:
        assert max(rh, rw) <= max_size or max(rh, rw) == 1


def test_percentiles_by_hand() -> None:
    # values 0..99 once each: the 10th / 90th percentiles of 100 sorted values are entries round(0.1 * 99) = 10 and
    # round(0.9 * 99) = 89, so v maps to (v - 10) / 79
    x = torch.arange(100, dtype=torch.float32).view(1, 1, 10, 10)
    y = percentile_normalize(x, [(10, 10)], low=10.0, high=90.0)
    torch.testing.assert_close(y, (x - 10) / 79)
    y = percentile_normalize(x, [(10, 10)])  # defaults 1 and 99.8: entries 1 and 99
    torch.testing.assert_close(y, (x - 1) / 98)
    for low, high in [(-1.0, 50.0), (10.0, 100.5), (60.0, 60.0)]:
        with pytest.raises(ValueError, match="percentiles"):
            percentile_normalize(x, [(10, 10)], low=low, high=high)
    percentile_normalize(x, [(10, 10)], low=0.0, high=100.0)  # the limits themselves are allowed


def test_percentiles_are_per_image_over_the_valid_part_only() -> None:
    x = torch.zeros(2, 1, 4, 6)
    x[0, 0, :2, :3] = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x[0, 0, 2:, :] = 1000.0  # padding beyond image_sizes[0] must not count
    x[1, 0] = torch.arange(24, dtype=torch.float32).view(4, 6) * 10
    y = percentile_normalize(x, [(2, 3), (4, 6)], low=0.0, high=100.0)
    torch.testing.assert_close(y[0, 0, :2, :3], (x[0, 0, :2, :3] - 1) / 5)
    assert (y[0, 0, 2:] == 0).all() and (y[0, 0, :, 3:] == 0).all()
    torch.testing.assert_close(y[1, 0], x[1, 0] / 230)


@pytest.mark.parametrize(("padded", "size"), [((40, 40), (12, 12)), ((30, 50), (7, 9)), ((64, 64), (10, 10))])
def test_fallback_equals_interpolate_for_every_mask(padded: tuple[int, int], size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(sum(padded))
    masks = torch.rand(70, padded[0] - 3, padded[1] - 5, generator=g) > 0.6  # more masks than one fallback chunk
    got = area_downsample_masks(masks, padded, size)
    full = F.pad(masks.float(), (0, 5, 0, 3))
    expected = F.interpolate(full[None], size=size, mode="area")[0]
    assert got.shape == (70, *size)
    torch.testing.assert_close(got, expected)
