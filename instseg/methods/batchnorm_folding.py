"""Fold BatchNorm layers into the convolutions that feed them, for faster CPU inference of a trained model.

torch.ao's ``fuse_modules`` needs the module names of every (conv, bn) pair written out, and torch.fx tracing
fails on models with data-dependent control flow (post-processing, variable object counts). Pairs are found here
instead by watching one forward pass: a norm whose input is always the output of one conv, which feeds nothing
else, is folded into it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d

from instseg.structures import ImageBatch

if TYPE_CHECKING:
    from instseg.methods.segmenter import InstanceSegmenter

_BATCH_NORMS = (nn.BatchNorm2d, FrozenBatchNorm2d)


@torch.no_grad()
def fuse_conv_batchnorm(model: InstanceSegmenter, image_size: int = 64) -> InstanceSegmenter:
    """Fold every BatchNorm that directly follows a Conv2d into that conv (eval mode; returns ``model``).

    The pairs are found on a blank ``image_size`` square image. The folded
    model gives the same outputs up to rounding and can no longer be trained (the norms become identities).
    """
    model.eval()
    pairs = find_conv_norm_pairs(model, torch.zeros(1, 3, image_size, image_size))
    names = {id(m): name for name, m in model.named_modules()}
    for conv, norm in pairs:
        fold_norm_into_conv(conv, norm)
        parent_name, _, attr = names[id(norm)].rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, nn.Identity())
    return model


def find_conv_norm_pairs(model: InstanceSegmenter, image: Tensor) -> list[tuple[nn.Conv2d, nn.Module]]:
    """(conv, norm) pairs where the norm's input is always the output of that conv, and the conv's output
    always goes to that norm, on a forward pass of ``image`` Tensor[1, 3, H, W] (raw pixels) through ``model``."""
    produced: dict[int, tuple[nn.Conv2d, Tensor]] = {}
    conv_calls: dict[nn.Conv2d, int] = {}
    norm_inputs: dict[nn.Module, list[nn.Conv2d | None]] = {}

    def on_conv(module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        assert isinstance(module, nn.Conv2d)
        produced[id(output)] = (module, output)  # the tensor is kept so that its id is not reused
        conv_calls[module] = conv_calls.get(module, 0) + 1

    def on_norm(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        source = produced.get(id(inputs[0]))
        norm_inputs.setdefault(module, []).append(source[0] if source is not None else None)

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv))
        elif isinstance(module, _BATCH_NORMS):
            handles.append(module.register_forward_pre_hook(on_norm))
    try:
        size = (int(image.shape[-2]), int(image.shape[-1]))
        batch = ImageBatch(image.to(model.pixel_mean.device), [size], [size])
        model(batch)
    finally:
        for handle in handles:
            handle.remove()
    pairs = []
    for norm, sources in norm_inputs.items():
        conv = sources[0]
        if conv is not None and all(s is conv for s in sources) and conv_calls[conv] == len(sources):
            pairs.append((conv, norm))
    return pairs


def fold_norm_into_conv(conv: nn.Conv2d, norm: nn.Module) -> None:
    """Rewrite ``conv`` so that it computes ``norm(conv(x))`` with the norm's running statistics (eval mode)."""
    running_mean, running_var = norm.running_mean, norm.running_var
    assert isinstance(running_mean, Tensor) and isinstance(running_var, Tensor)
    weight = norm.weight if isinstance(norm.weight, Tensor) else torch.ones_like(running_mean)
    bias = norm.bias if isinstance(norm.bias, Tensor) else torch.zeros_like(running_mean)
    scale = weight / torch.sqrt(running_var + float(norm.eps))  # type: ignore[arg-type]
    conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(running_mean)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    new_bias = (conv_bias - running_mean) * scale + bias
    conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype).detach(), requires_grad=conv.weight.requires_grad)
