"""MobileNetV3-Large backbone (torchvision) giving the last map of each stride 4, 8, 16, 32."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision import models

from instseg.backbones.backbone import Backbone
from instseg.backbones.norm import check_norm, norm_layer


class MobileNetV3Backbone(Backbone):
    """torchvision's MobileNetV3-Large ``features``, cut into stages where the stride doubles.

    ``forward(Tensor[B, 3, H, W]) -> {"c2", "c3", "c4", "c5"}`` with 24, 40, 112 and 960 channels at strides 4, 8,
    16 and 32: each level is the last block before the next down-sampling block, the richest map at that stride.
    ``trainable_layers`` counts stages from the top (0..5, the fifth being the stride-2 stem).
    """

    def __init__(self, pretrained: bool = False, norm: str = "bn", trainable_layers: int = 5) -> None:
        check_norm(norm, pretrained)
        if not 0 <= trainable_layers <= 5:
            raise ValueError(f"trainable_layers must be in 0..5, got {trainable_layers}")
        weights = models.MobileNet_V3_Large_Weights.IMAGENET1K_V1 if pretrained else None
        # MobileNetV3's own BatchNorm uses eps=0.001; keep it so ImageNet statistics mean what they meant
        net = models.mobilenet_v3_large(weights=weights, norm_layer=norm_layer(norm, eps=0.001))
        blocks = list(net.features)
        # a block starts a new stage when it down-samples: the stem (index 0) and blocks torchvision marks _is_cn
        starts = [0] + [i for i, b in enumerate(blocks) if getattr(b, "_is_cn", False)]
        ends = [s - 1 for s in starts[1:]] + [len(blocks) - 1]
        stages = [nn.Sequential(*blocks[s : e + 1]) for s, e in zip(starts, ends, strict=True)]
        assert len(stages) == 5, f"expected 5 strides in MobileNetV3-Large, found {len(stages)}"
        channels = [int(blocks[e].out_channels) for e in ends[1:]]
        super().__init__(["c2", "c3", "c4", "c5"], channels, [4, 8, 16, 32])
        self.stages = nn.ModuleList(stages)  # stride 2, 4, 8, 16, 32
        for depth, stage in enumerate(reversed(self.stages)):
            stage.requires_grad_(depth < trainable_layers)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Features of Tensor[B, 3, H, W] images at strides 4 (``c2``), 8, 16 and 32 (``c5``)."""
        x = self.stages[0](x)  # [B, 16, H/2, W/2]
        out = {}
        for name, stage in zip(self.feature_names, self.stages[1:], strict=True):
            x = stage(x)
            out[name] = x
        return out
