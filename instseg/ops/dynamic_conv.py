"""Dynamic 1x1 convolutions (CondInst, Tian et al. 2020): a chain of per-instance 1x1 conv layers whose weights are
predicted by the network, run over one image's feature map to give that instance's mask logits.

A layer layout ``channels = (c_0, c_1, ..., c_L)`` says layer ``l`` maps ``c_l`` to ``c_{l+1}`` channels; each
instance's parameter vector Tensor[P] holds, layer after layer, the weight Tensor[c_{l+1}, c_l] (row-major) and then
its bias Tensor[c_{l+1}], so ``P = sum_l (c_l + 1) * c_{l+1}`` (CondInst's default ``(10, 8, 8, 1)``: 169).

Written with ``torch.bmm`` rather than a grouped convolution (``conv2d(x.view(1, N * C, H, W), groups=N)``, the
usual trick): a 1x1 conv is a matrix product, one batched product runs all instances without a reshape into one
giant image, and in ONNX it is a ``MatMul`` with a dynamic instance count, where a grouped ``Conv``'s ``group``
attribute would freeze the number of instances into the exported graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor

from instseg.ops.fcos import level_points


def dynamic_param_count(channels: Sequence[int]) -> int:
    """The length of one instance's parameter vector for the layer layout ``channels`` (weights and biases)."""
    if len(channels) < 2:
        raise ValueError(f"a dynamic conv chain needs at least two channel counts, got {list(channels)}")
    return sum((c_in + 1) * c_out for c_in, c_out in pairwise(channels))


def split_dynamic_params(params: Tensor, channels: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
    """Per layer, the weights Tensor[N, c_out, c_in] and biases Tensor[N, c_out] held in ``params`` Tensor[N, P]
    (layout in the module docstring)."""
    expected = dynamic_param_count(channels)
    if params.shape[-1] != expected:
        raise ValueError(f"channel layout {list(channels)} needs {expected} parameters, got {params.shape[-1]}")
    n, layers, start = params.shape[0], [], 0
    for c_in, c_out in pairwise(channels):
        weight = params[:, start : start + c_out * c_in].reshape(n, c_out, c_in)
        start += c_out * c_in
        layers.append((weight, params[:, start : start + c_out]))
        start += c_out
    return layers


def relative_coordinates(points: Tensor, scales: Tensor, size: tuple[int, int], stride: int) -> Tensor:
    """Tensor[N, 2, H, W]: ``(location - point) / scale`` in ``(x, y)`` order for every cell of a ``size`` grid of
    ``stride`` (cell centres as ``level_points``: ``stride * j + stride // 2``), for ``points`` Tensor[N, 2] (input
    pixels) and ``scales`` Tensor[N] (CondInst divides by the size of interest of the point's pyramid level, so
    the coordinates are about -1..1 across an object of the size that level detects)."""
    locations, _ = level_points([size], [stride], points.device)  # [H*W, 2]
    rel = (locations[None].to(points.dtype) - points[:, None]) / scales[:, None, None]  # [N, H*W, 2]
    return rel.transpose(1, 2).reshape(points.shape[0], 2, *size)


def dynamic_mask_logits(
    features: Tensor,
    image_index: Tensor,
    points: Tensor,
    scales: Tensor,
    params: Tensor,
    channels: Sequence[int],
    stride: int,
) -> Tensor:
    """Mask logits Tensor[N, H, W] of N instances: each runs its own 1x1 conv chain (``params`` Tensor[N, P],
    layout ``channels``; ReLU between layers, none after the last) over its image's ``features`` Tensor[B, C, H, W]
    (picked by ``image_index`` Tensor[N] int64) concatenated with its ``relative_coordinates`` (so ``channels[0]``
    must be ``C + 2``); ``channels[-1]`` must be 1. The coordinates let one shared feature map serve every
    instance: the filters tell "my object" from a look-alike elsewhere by position.

    The first layer is linear, so the coordinates fold into it: ``W_xy (loc - p) / s = (W_xy / s) loc - W_xy p / s``
    reads the image-wide cell locations with a per-instance bias; each image is then one matrix product of its
    instances' filters with its features, without a per-instance copy of them (on a crowded image those copies,
    N x (C + 2) x H x W, cost more than the convolutions).
    """
    if channels[0] != features.shape[1] + 2 or channels[-1] != 1:
        raise ValueError(f"layout {list(channels)} must read {features.shape[1]} + 2 channels and give 1")
    h, w = int(features.shape[-2]), int(features.shape[-1])
    n = params.shape[0]
    if n == 0:
        return features.new_zeros((0, h, w))
    layers = split_dynamic_params(params, channels)
    weight, bias = layers[0]  # [N, c_1, C + 2], [N, c_1]
    w_xy = weight[:, :, -2:] / scales[:, None, None]  # [N, c_1, 2]
    bias = bias - torch.bmm(w_xy, points[:, :, None].to(w_xy.dtype))[..., 0]
    weight = torch.cat([weight[:, :, :-2], w_xy], dim=2)
    locations, _ = level_points([(h, w)], [stride], features.device)  # [H*W, 2] (x, y)
    pieces, order = [], []
    for b in range(features.shape[0]):
        mine = torch.nonzero(image_index == b).squeeze(1)
        if mine.numel():
            inputs = torch.cat([features[b].flatten(1), locations.T.to(features.dtype)])  # [C + 2, H*W]
            pieces.append(torch.matmul(weight[mine], inputs))  # [n_b, c_1, H*W]: one GEMM
            order.append(mine)
    x = torch.cat(pieces)[torch.argsort(torch.cat(order))] + bias[:, :, None]  # back to the instances' order
    for weight, bias in layers[1:]:
        x = torch.bmm(weight, F.relu(x)) + bias[:, :, None]  # [N, c_out, H*W]
    return x.reshape(n, h, w)
