"""ResNet backbones (torchvision's ResNet-18/34/50/101) giving C2..C5 at strides 4, 8, 16, 32."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torchvision import models

from instseg.backbones.backbone import Backbone
from instseg.backbones.norm import check_norm, norm_layer

# name -> (torchvision constructor, ImageNet weights enum member). V1 weights are the ones torchvision's own
# detection models were trained from, so COCO recipes transfer unchanged.
_RESNETS: dict[str, tuple[Any, Any]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (models.resnet101, models.ResNet101_Weights.IMAGENET1K_V1),
}

# stages from the top down; ``trainable_layers=k`` trains the first k of them and freezes the rest
_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")


class ResNetBackbone(Backbone):
    """A torchvision ResNet without its classifier: ``forward(Tensor[B, 3, H, W]) -> {"c2", "c3", "c4", "c5"}``.

    The sub-modules keep torchvision's names (``conv1``, ``bn1``, ``layer1``..``layer4``) so that torchvision
    checkpoints map onto this module by a plain prefix change.
    """

    def __init__(
        self,
        name: str = "resnet50",
        pretrained: bool = False,
        norm: str = "bn",
        trainable_layers: int = 5,
    ) -> None:
        if name not in _RESNETS:
            raise ValueError(f"unknown ResNet {name!r}; choose one of {', '.join(_RESNETS)}")
        check_norm(norm, pretrained)
        if not 0 <= trainable_layers <= 5:
            raise ValueError(f"trainable_layers must be in 0..5, got {trainable_layers}")
        constructor, weights = _RESNETS[name]
        # pretrained weights are fetched by torchvision (cached under TORCH_HOME) only when asked for
        net = constructor(weights=weights if pretrained else None, norm_layer=norm_layer(norm))
        width = net.layer1[0].conv1.in_channels  # 64 for every standard ResNet
        expansion = net.layer1[-1].expansion  # 1 (basic block) or 4 (bottleneck)
        channels = [width * expansion * 2**i for i in range(4)]
        super().__init__(["c2", "c3", "c4", "c5"], channels, [4, 8, 16, 32])
        self.name = name
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        trainable = set(_STAGES[:trainable_layers])
        for stage in _STAGES:
            modules = [self.conv1, self.bn1] if stage == "conv1" else [getattr(self, stage)]
            for module in modules:
                module.requires_grad_(stage in trainable)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Features of Tensor[B, 3, H, W] images at strides 4 (``c2``), 8, 16 and 32 (``c5``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B, 64, H/4, W/4]
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"c2": c2, "c3": c3, "c4": c4, "c5": c5}
