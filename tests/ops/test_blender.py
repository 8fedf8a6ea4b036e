"""BlendMask's blender on hand-computed cases: softmax mixing, the RoI grid, attention upsampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from instseg.ops.blender import blend, blend_attentions, crop_bases


def test_one_basis_of_ones_and_uniform_attention_gives_one_over_k() -> None:
    bases = torch.zeros(1, 4, 8, 8)
    bases[0, 0] = 1.0
    boxes = torch.tensor([[4.0, 4.0, 20.0, 28.0]])
    out = blend(bases, boxes, torch.tensor([0]), torch.zeros(1, 4, 3, 3), resolution=5, stride=4)
    assert out.shape == (1, 5, 5)
    assert torch.allclose(out, torch.full((1, 5, 5), 0.25))
    # attention all on the basis of ones: the mask is that basis
    attention = torch.full((1, 4, 3, 3), -30.0)
    attention[0, 0] = 30.0
    out = blend(bases, boxes, torch.tensor([0]), attention, resolution=5, stride=4)
    assert torch.allclose(out, torch.ones(1, 5, 5), atol=1e-6)


def test_softmax_over_two_bases_with_known_logits() -> None:
    bases = torch.stack([torch.full((6, 6), 2.0), torch.full((6, 6), -1.0)])[None]  # [1, 2, 6, 6]
    attention = torch.stack([torch.full((2, 2), math.log(3.0)), torch.zeros(2, 2)])[None]  # weights 3/4, 1/4
    out = blend(bases, torch.tensor([[0.0, 0.0, 12.0, 12.0]]), torch.tensor([0]), attention, 4, stride=2)
    assert torch.allclose(out, torch.full((1, 4, 4), 2.0 * 0.75 - 1.0 * 0.25))


def test_roi_grid_maps_a_known_box_onto_its_base_cells() -> None:
    # one basis holding 10 * row + column: bilinear sampling of a linear map is exact, so each bin reads the
    # base coordinate of its centre; cell c has its centre at input pixel 4 c + 2 (stride 4)
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    bases = (10 * rows + cols)[None, None]
    box = torch.tensor([[8.0, 4.0, 24.0, 20.0]])  # bin centres x = 10, 14, 18, 22 -> cells 2..5; y 6..18 -> 1..4
    cropped = crop_bases(bases, box, torch.tensor([0]), resolution=4, stride=4)
    expected = 10 * torch.arange(1.0, 5.0)[:, None] + torch.arange(2.0, 6.0)[None]
    assert torch.allclose(cropped[0, 0], expected, atol=1e-5)


def test_boxes_read_their_own_image_of_the_batch() -> None:
    bases = torch.stack([torch.full((1, 4, 4), 1.0), torch.full((1, 4, 4), 7.0)])  # [2, 1, 4, 4]
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0]])
    out = blend(bases, boxes, torch.tensor([1, 0]), torch.zeros(2, 1, 2, 2), 2, stride=4)
    assert out[:, 0, 0].tolist() == [7.0, 1.0]


def test_attentions_are_upsampled_bilinearly_before_the_softmax() -> None:
    torch.manual_seed(0)
    cropped, attention = torch.randn(3, 2, 6, 6), torch.randn(3, 2, 3, 3)
    up = F.interpolate(attention, size=(6, 6), mode="bilinear", align_corners=False)
    expected = (cropped * up.softmax(dim=1)).sum(1)
    assert torch.allclose(blend_attentions(cropped, attention), expected, atol=1e-6)
    assert torch.allclose(blend_attentions(cropped, up), expected, atol=1e-6)  # M == R: no resampling


def test_gradients_reach_bases_and_attentions_and_empty_input() -> None:
    bases = torch.randn(1, 4, 8, 8, requires_grad=True)
    attention = torch.randn(2, 4, 3, 3, requires_grad=True)
    boxes = torch.tensor([[2.0, 2.0, 20.0, 30.0], [10.0, 0.0, 32.0, 12.0]])
    blend(bases, boxes, torch.tensor([0, 0]), attention, 7, stride=4).sum().backward()
    assert bases.grad is not None and bases.grad.abs().sum() > 0
    assert attention.grad is not None and attention.grad.abs().sum() > 0
    empty = blend(bases, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4, 3, 3), 7, 4)
    assert empty.shape == (0, 7, 7)
    with pytest.raises(ValueError, match="attentions"):
        blend(bases, boxes, torch.tensor([0, 0]), torch.zeros(2, 3, 3, 3), 7, 4)
