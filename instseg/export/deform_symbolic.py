"""ONNX form of torchvision's deformable convolution (YOLACT++), which torchvision registers no exporter for.

ONNX ``DeformConv`` (opset 19) is the same operation: offsets laid out as (offset group, kernel row, kernel
column, (dy, dx)), an optional modulation mask, one bias; onnxruntime implements it on CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.onnx import symbolic_helper

DEFORM_OPSET = 19
_registered = False


def _deform_conv2d(g: Any, x: Any, weight: Any, offset: Any, mask: Any, bias: Any, *args: Any) -> Any:
    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, offset_groups = (
        symbolic_helper._get_const(a, "i", name) for a, name in zip(args[:8], ("stride",) * 8, strict=True)
    )
    use_mask = symbolic_helper._get_const(args[8], "b", "use_mask")
    inputs = [x, weight, offset, bias] + ([mask] if use_mask else [])
    return g.op(
        "DeformConv",
        *inputs,
        dilations_i=[dil_h, dil_w],
        group_i=groups,
        offset_group_i=offset_groups,
        pads_i=[pad_h, pad_w, pad_h, pad_w],
        strides_i=[stride_h, stride_w],
    )


def register_deform_conv() -> None:
    """Teach the TorchScript-based exporter ``torchvision::deform_conv2d`` (once per process)."""
    global _registered
    if not _registered:
        torch.onnx.register_custom_op_symbolic("torchvision::deform_conv2d", _deform_conv2d, DEFORM_OPSET)
        _registered = True
