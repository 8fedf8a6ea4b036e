"""Backbones: adapters giving multi-scale features plus their channel counts and strides.

``build_backbone(name, pretrained, norm)`` covers torchvision's ResNets and MobileNetV3-Large, and any timm
model as ``"timm:<name>"`` (timm is optional and imported only then).
"""

from __future__ import annotations

from typing import Any

from instseg.backbones.backbone import Backbone
from instseg.backbones.mobilenet import MobileNetV3Backbone
from instseg.backbones.norm import NORMS, group_norm, norm_layer
from instseg.backbones.resnet import ResNetBackbone
from instseg.backbones.timm_features import TimmBackbone

TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v3_large")


def backbone_choices(pretrained: bool, norm: str | None, trainable_layers: int | None) -> dict[str, Any]:
    """Resolved ``norm`` and ``trainable_layers``: frozen BatchNorm and the top three stages trained when starting
    from pretrained weights, trainable BatchNorm and every stage from scratch (torchvision's detection recipe;
    its frozen BatchNorm is an identity until weights are loaded). Builders store these in ``rebuild_kwargs``."""
    return {
        "norm": norm if norm is not None else ("frozen_bn" if pretrained else "bn"),
        "trainable_layers": trainable_layers if trainable_layers is not None else (3 if pretrained else 5),
    }


def build_backbone(
    name: str,
    pretrained: bool = False,
    norm: str | None = None,
    trainable_layers: int | None = None,
    **kwargs: Any,
) -> Backbone:
    """Build a backbone by name (``resnet50``, ``mobilenet_v3_large``, ``timm:convnext_tiny``...).

    ``norm=None`` picks ``frozen_bn`` with pretrained weights and trainable ``bn`` without (torchvision's frozen
    BatchNorm is an identity until weights are loaded). ``trainable_layers=None`` trains the top three stages
    of a pretrained network and everything when training from scratch, as torchvision's detection recipes do.
    """
    if name.startswith("timm:"):
        return TimmBackbone(name[len("timm:") :], pretrained=pretrained, **kwargs)
    choices = backbone_choices(pretrained, norm, trainable_layers)
    norm, trainable = choices["norm"], choices["trainable_layers"]
    if name.startswith("resnet"):
        return ResNetBackbone(name, pretrained=pretrained, norm=norm, trainable_layers=trainable, **kwargs)
    if name == "mobilenet_v3_large":
        return MobileNetV3Backbone(pretrained=pretrained, norm=norm, trainable_layers=trainable, **kwargs)
    raise ValueError(
        f"backbones: unknown backbone {name!r}; choose one of {', '.join(TORCHVISION_BACKBONES)} or 'timm:<model name>'"
    )


__all__ = [
    "NORMS",
    "TORCHVISION_BACKBONES",
    "Backbone",
    "MobileNetV3Backbone",
    "ResNetBackbone",
    "TimmBackbone",
    "backbone_choices",
    "build_backbone",
    "group_norm",
    "norm_layer",
]
