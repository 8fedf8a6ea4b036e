"""Dynamic 1x1 conv chains: the parameter layout, relative coordinates and hand-computed mask logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from instseg.ops.dynamic_conv import (
    dynamic_mask_logits,
    dynamic_param_count,
    relative_coordinates,
    split_dynamic_params,
)


def test_param_count_and_split_layout() -> None:
    assert dynamic_param_count((10, 8, 8, 1)) == 169  # CondInst's default head
    assert dynamic_param_count((3, 1)) == 4
    params = torch.arange(13.0)[None]  # layout (2, 3, 1): W1 [3, 2], b1 [3], W2 [1, 3], b2 [1]
    (w1, b1), (w2, b2) = split_dynamic_params(params, (2, 3, 1))
    assert torch.equal(w1[0], torch.arange(6.0).view(3, 2)) and torch.equal(b1[0], torch.tensor([6.0, 7.0, 8.0]))
    assert torch.equal(w2[0], torch.tensor([[9.0, 10.0, 11.0]])) and torch.equal(b2[0], torch.tensor([12.0]))
    with pytest.raises(ValueError, match="needs 13 parameters"):
        split_dynamic_params(torch.zeros(1, 12), (2, 3, 1))


def test_relative_coordinates_of_a_known_point() -> None:
    # a 2x2 grid of stride 8 has cell centres x, y in {4, 12}; the point (4, 12) with scale 8
    rel = relative_coordinates(torch.tensor([[4.0, 12.0]]), torch.tensor([8.0]), (2, 2), stride=8)
    assert rel.shape == (1, 2, 2, 2)
    assert torch.equal(rel[0, 0], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))  # x: columns
    assert torch.equal(rel[0, 1], torch.tensor([[-1.0, -1.0], [0.0, 0.0]]))  # y: rows


def _params(w1: list[float], b1: float, w2: float, b2: float) -> torch.Tensor:
    """One instance's parameters for the layout (3, 1, 1): [feature, x, y] -> 1 -> 1."""
    return torch.tensor([[*w1, b1, w2, b2]])


def test_identity_weights_relu_between_layers_and_none_after_the_last() -> None:
    features = torch.tensor([[[[1.0, -2.0], [3.0, 4.0]]]])  # [1, 1, 2, 2]
    point, scale = torch.tensor([[4.0, 4.0]]), torch.tensor([8.0])
    index = torch.tensor([0])
    # layer 1 reads the feature only (bias -0.5), ReLU, layer 2 doubles and subtracts 10: stays negative
    logits = dynamic_mask_logits(
        features, index, point, scale, _params([1.0, 0.0, 0.0], -0.5, 2.0, -10.0), (3, 1, 1), 8
    )
    relu = torch.tensor([[0.5, 0.0], [2.5, 3.5]])
    assert torch.allclose(logits[0], 2.0 * relu - 10.0)
    # layer 1 reads the relative x coordinate only: 0 in the point's column, 1 one cell to the right
    logits = dynamic_mask_logits(features, index, point, scale, _params([0.0, 1.0, 0.0], 0.0, 1.0, 0.0), (3, 1, 1), 8)
    assert torch.allclose(logits[0], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    # ... and the y coordinate of a point below the grid: all negative, cut by the ReLU
    below = torch.tensor([[4.0, 40.0]])
    logits = dynamic_mask_logits(features, index, below, scale, _params([0.0, 0.0, 1.0], 0.0, 1.0, 3.0), (3, 1, 1), 8)
    assert torch.allclose(logits[0], torch.full((2, 2), 3.0))


def test_instances_read_their_own_image() -> None:
    features = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])  # image 0 all 0, image 1 all 1
    params = _params([1.0, 0.0, 0.0], 0.0, 1.0, 0.0).repeat(3, 1)
    points, scales = torch.zeros(3, 2), torch.ones(3)
    logits = dynamic_mask_logits(features, torch.tensor([1, 0, 1]), points, scales, params, (3, 1, 1), 8)
    assert logits.shape == (3, 2, 2)
    assert logits[:, 0, 0].tolist() == [1.0, 0.0, 1.0]
    empty = dynamic_mask_logits(
        features, torch.zeros(0, dtype=torch.long), points[:0], scales[:0], params[:0], (3, 1, 1), 8
    )
    assert empty.shape == (0, 2, 2)


def test_matches_a_grouped_convolution() -> None:
    torch.manual_seed(0)
    layout, n = (10, 8, 8, 1), 5
    features = torch.randn(2, 8, 6, 7)
    index, points = torch.tensor([0, 1, 1, 0, 1]), torch.rand(n, 2) * 50
    scales, params = torch.full((n,), 64.0), torch.randn(n, dynamic_param_count(layout), requires_grad=True)
    logits = dynamic_mask_logits(features, index, points, scales, params, layout, 8)
    # reference: the usual grouped-conv formulation, one group per instance
    x = torch.cat([features[index], relative_coordinates(points, scales, (6, 7), 8)], dim=1).reshape(1, -1, 6, 7)
    layers = split_dynamic_params(params, layout)
    for i, (w, b) in enumerate(layers):
        x = F.conv2d(x, w.reshape(-1, w.shape[2], 1, 1), b.reshape(-1), groups=n)
        x = F.relu(x) if i < len(layers) - 1 else x
    assert torch.allclose(logits, x.reshape(n, 6, 7), atol=1e-5)
    logits.sum().backward()
    assert params.grad is not None and params.grad.abs().sum() > 0
