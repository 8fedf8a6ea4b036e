"""``Backbone``: the interface every feature extractor offers to necks (feature names, channels, strides)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class Backbone(nn.Module):
    """A multi-scale feature extractor.

    ``forward(x: Tensor[B, 3, H, W]) -> dict[str, Tensor]`` gives one map per level, in the order of
    ``feature_names``, level ``i`` being Tensor[B, feature_channels[i], H / feature_strides[i], W / feature_strides[i]]
    (rounded up for sizes that are not multiples of the stride). Necks read the three lists to size themselves,
    as timm's ``feature_info`` lets them, so a neck never needs to know which network it sits on.
    """

    def __init__(self, names: Sequence[str], channels: Sequence[int], strides: Sequence[int]) -> None:
        super().__init__()
        assert len(names) == len(channels) == len(strides), "one channel count and one stride per feature"
        self.feature_names = list(names)
        self.feature_channels = [int(c) for c in channels]
        self.feature_strides = [int(s) for s in strides]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError
