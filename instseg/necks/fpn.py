"""Feature Pyramid Network (Lin et al., 2017) on any ``Backbone``: torchvision's FPN plus a max-pooled top level."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from instseg.backbones import Backbone, norm_layer


class FPN(nn.Module):
    """Top-down pyramid with lateral connections over backbone maps.

    ``forward(features: dict[str, Tensor]) -> OrderedDict[str, Tensor]``: reads ``in_names`` (maps
    Tensor[B, in_channels[i], H / s_i, W / s_i]) and returns one Tensor[B, out_channels, H / s_i, W / s_i] per input
    level, named ``p{k}`` for an input ``c{k}``, plus (``top_pool=True``) a stride-doubled level max-pooled from the
    coarsest one, as Mask R-CNN uses for its largest anchors. ``feature_names``/``feature_strides`` describe the
    output. The pyramid itself is torchvision's ``FeaturePyramidNetwork`` (kept as ``self.fpn`` so torchvision
    checkpoints map onto it by prefix).
    """

    def __init__(
        self,
        in_names: Sequence[str],
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        out_channels: int = 256,
        top_pool: bool = True,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if not len(in_names) == len(in_channels) == len(in_strides) > 0:
            raise ValueError("in_names, in_channels and in_strides must be non-empty and of one length")
        self.in_names = list(in_names)
        self.top_pool = top_pool
        self.out_channels = out_channels
        self.fpn = FeaturePyramidNetwork(
            list(in_channels),
            out_channels,
            extra_blocks=LastLevelMaxPool() if top_pool else None,
            norm_layer=norm_layer,
        )
        self.feature_names = [("p" + n[1:]) if n.startswith("c") else f"p_{n}" for n in self.in_names]
        self.feature_strides = list(in_strides)
        if top_pool:
            last = self.feature_names[-1]
            self.feature_names.append(f"p{int(last[1:]) + 1}" if last[1:].isdigit() else "pool")
            self.feature_strides.append(2 * self.feature_strides[-1])

    def forward(self, features: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        """Pyramid maps, finest first, each with ``out_channels`` channels."""
        x = OrderedDict((name, features[name]) for name in self.in_names)
        out = self.fpn(x)  # keys: in_names (+ "pool")
        return OrderedDict(zip(self.feature_names, out.values(), strict=True))


def fpn_from_stride_8(backbone: Backbone, out_channels: int, norm: str | None = None, top_pool: bool = False) -> FPN:
    """``FPN`` over the stride 8, 16 and 32 maps of ``backbone`` (a ``Backbone``, whose first map has stride 4),
    as the one-stage detectors use it (P3-P5, plus a max-pooled P6 with ``top_pool``), with ``norm`` ("gn", "bn"
    or None) after its convs."""
    return FPN(
        backbone.feature_names[1:],
        backbone.feature_channels[1:],
        backbone.feature_strides[1:],
        out_channels=out_channels,
        top_pool=top_pool,
        norm_layer=norm_layer(norm) if norm is not None else None,
    )
