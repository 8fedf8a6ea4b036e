"""Pasting box-relative soft masks: the pixel window of a box, the sampling geometry, clipping."""

from __future__ import annotations

import torch

from instseg.ops.box_paste import box_pixel_window, paste_in_boxes


def test_window_holds_the_pixels_whose_centres_are_in_the_box() -> None:
    assert box_pixel_window((2.0, 3.0, 6.0, 5.0), (8, 8)) == (2, 3, 6, 5)
    assert box_pixel_window((2.4, 3.6, 6.6, 5.0), (8, 8)) == (2, 4, 7, 5)  # centres 2.5..6.5 and 4.5
    assert box_pixel_window((-3.0, -1.0, 20.0, 4.0), (8, 10)) == (0, 0, 10, 4)  # clipped to the image
    x0, y0, x1, y1 = box_pixel_window((3.1, 3.1, 3.4, 3.4), (8, 8))  # covers no pixel centre
    assert x1 == x0 and y1 == y0


def test_paste_full_mask_fills_its_window() -> None:
    crops, corners = paste_in_boxes(torch.ones(1, 5, 5), torch.tensor([[2.0, 3.0, 6.0, 5.0]]), (8, 8))
    assert corners == [(2, 3)] and crops[0].shape == (2, 4) and bool(crops[0].all())


def test_paste_samples_the_inverse_of_the_roi_grid() -> None:
    # left half on over a box 0..8 wide: pixel x reads column (x + 0.5) * 4 / 8 - 0.5, so x = 3 reads 1.25
    # (3/4 on) and x = 4 reads 1.75 (1/4 on); the mask splits exactly at the box's middle
    probs = torch.zeros(1, 4, 4)
    probs[0, :, :2] = 1.0
    crops, corners = paste_in_boxes(probs, torch.tensor([[0.0, 0.0, 8.0, 4.0]]), (4, 8))
    assert corners == [(0, 0)]
    assert crops[0].shape == (4, 8)
    assert crops[0].any(0).tolist() == [True] * 4 + [False] * 4


def test_paste_of_a_degenerate_box_is_empty() -> None:
    crops, _ = paste_in_boxes(torch.ones(2, 3, 3), torch.tensor([[3.1, 3.1, 3.4, 3.4], [5.0, 5.0, 5.0, 9.0]]), (8, 8))
    assert all(c.numel() == 0 for c in crops)
    crops, corners = paste_in_boxes(torch.zeros(0, 3, 3), torch.zeros(0, 4), (8, 8))
    assert crops == [] and corners == []
