"""Cropped mask upsampling equals thresholding the full-image bilinear interpolation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from instseg.ops.boxes import masks_to_boxes
from instseg.ops.masks import threshold_upsampled_masks


def _blobs(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Soft masks Tensor[n, h, w]: Gaussian bumps at random places and sizes, some touching the border."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    centres = torch.rand(n, 2, generator=g) * torch.tensor([h, w])
    sizes = 0.5 + torch.rand(n, generator=g) * 4
    d2 = (ys[None] - centres[:, 0, None, None]) ** 2 + (xs[None] - centres[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sizes[:, None, None] ** 2)) * (0.3 + 0.7 * torch.rand(n, 1, 1, generator=g))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_size_equals_full_interpolation(seed: int) -> None:
    soft = _blobs(40, 24, 32, seed)  # grid of a 96 x 128 padded input at stride 4
    h, w = 90, 125  # the image's part of the padded input
    expected = F.interpolate(soft[None], scale_factor=4.0, mode="bilinear", align_corners=False)[0, :, :h, :w] > 0.5
    got, boxes = threshold_upsampled_masks(soft, 4, (h, w), (h, w))
    assert torch.equal(got, expected)
    assert torch.equal(boxes, masks_to_boxes(expected))
    assert expected.any(dim=(1, 2)).sum() > 10  # the case is not trivially empty


@pytest.mark.parametrize("out_size", [(45, 62), (180, 250), (91, 126)])
def test_other_sizes_equal_one_bilinear_step(out_size: tuple[int, int]) -> None:
    soft = _blobs(30, 24, 32, 5)
    h, w = 90, 125
    # reference: one bilinear step from the grid to the output, sampled with grid_sample at the same coordinates
    oh, ow = out_size
    ys = (torch.arange(oh) + 0.5) * h / (oh * 4) - 0.5
    xs = (torch.arange(ow) + 0.5) * w / (ow * 4) - 0.5
    ys, xs = ys.clamp(0, 23), xs.clamp(0, 31)
    grid = torch.stack(torch.meshgrid(xs * 2 / 31 - 1, ys * 2 / 23 - 1, indexing="xy"), dim=-1)
    reference = F.grid_sample(soft[:, None], grid[None].expand(30, -1, -1, -1), align_corners=True)[:, 0] > 0.5
    got, boxes = threshold_upsampled_masks(soft, 4, (h, w), out_size)
    assert torch.equal(boxes, masks_to_boxes(got))
    # float rounding can flip pixels sitting exactly at the threshold; nothing else may differ
    assert (got != reference).sum() <= 2


def test_empty_inputs() -> None:
    masks, boxes = threshold_upsampled_masks(torch.zeros(0, 8, 8), 4, (32, 32), (32, 32))
    assert masks.shape == (0, 32, 32) and boxes.shape == (0, 4)
    none_above, boxes = threshold_upsampled_masks(torch.full((3, 8, 8), 0.5), 4, (32, 32), (20, 30))
    assert none_above.shape == (3, 20, 30) and not none_above.any() and not boxes.any()


@pytest.mark.parametrize("out_size", [(90, 125), (45, 62), (180, 250)])
def test_windows_equal_a_box_crop_of_the_whole_result(out_size: tuple[int, int]) -> None:
    soft = _blobs(30, 24, 32, 7)
    g = torch.Generator().manual_seed(3)
    oh, ow = out_size
    whole, tight = threshold_upsampled_masks(soft, 4, (90, 125), out_size)
    # fractional boxes around the masks, some cutting into them, some wider, some off the image
    windows = tight + (torch.rand(30, 4, generator=g) - 0.5) * 0.3 * oh
    ys = torch.arange(oh, dtype=torch.float32)
    xs = torch.arange(ow, dtype=torch.float32)
    in_y = (ys[None] + 1 > windows[:, 1:2]) & (ys[None] < windows[:, 3:4])  # pixels each box overlaps
    in_x = (xs[None] + 1 > windows[:, 0:1]) & (xs[None] < windows[:, 2:3])
    expected = whole & in_y[:, :, None] & in_x[:, None, :]
    got, boxes = threshold_upsampled_masks(soft, 4, (90, 125), out_size, windows=windows)
    assert torch.equal(got, expected)
    assert torch.equal(boxes, masks_to_boxes(expected))
    assert expected.any(dim=(1, 2)).sum() >= 3
