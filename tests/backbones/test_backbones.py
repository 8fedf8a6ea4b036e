"""Backbones: declared channels and strides match the maps they give; norms and frozen stages behave."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from instseg.backbones import Backbone, build_backbone, group_norm


def _check_features(backbone: Backbone, size: tuple[int, int] = (64, 96)) -> None:
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        feats = backbone.eval()(x)
    assert list(feats) == backbone.feature_names
    for name, channels, stride in zip(
        backbone.feature_names, backbone.feature_channels, backbone.feature_strides, strict=True
    ):
        assert feats[name].shape == (2, channels, -(-size[0] // stride), -(-size[1] // stride)), name


@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("resnet18", [64, 128, 256, 512]),
        ("resnet34", [64, 128, 256, 512]),
        ("resnet50", [256, 512, 1024, 2048]),
        ("mobilenet_v3_large", [24, 40, 112, 960]),
    ],
)
def test_torchvision_backbones_declare_their_maps(name: str, channels: list[int]) -> None:
    backbone = build_backbone(name)
    assert backbone.feature_channels == channels
    assert backbone.feature_strides == [4, 8, 16, 32]
    _check_features(backbone)


def test_timm_backbone_reads_feature_info() -> None:
    pytest.importorskip("timm", reason="timm is an optional extra")
    backbone = build_backbone("timm:resnet18")
    assert backbone.feature_names == ["c2", "c3", "c4", "c5"]
    assert backbone.feature_channels == [64, 128, 256, 512]
    _check_features(backbone)


def test_timm_unknown_model_raises() -> None:
    pytest.importorskip("timm", reason="timm is an optional extra")
    with pytest.raises(ValueError, match="timm cannot build"):
        build_backbone("timm:no_such_net_exists")


def test_missing_timm_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail as if it were not installed
    with pytest.raises(ModuleNotFoundError, match="pip install timm"):
        build_backbone("timm:resnet18")


def test_group_norm_from_scratch() -> None:
    backbone = build_backbone("mobilenet_v3_large", norm="gn")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    norms = [m for m in backbone.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_channels % m.num_groups == 0 for m in norms)
    assert group_norm(72).num_groups == 8 and group_norm(256).num_groups == 32
    _check_features(backbone)


def test_default_norm_is_trainable_without_weights() -> None:
    backbone = build_backbone("resnet18")
    assert isinstance(backbone.bn1, nn.BatchNorm2d)
    assert all(p.requires_grad for p in backbone.parameters())


def test_trainable_layers_freeze_the_bottom() -> None:
    backbone = build_backbone("resnet18", norm="frozen_bn", trainable_layers=2)
    assert isinstance(backbone.bn1, FrozenBatchNorm2d)
    assert all(p.requires_grad for p in backbone.layer4.parameters())
    assert all(p.requires_grad for p in backbone.layer3.parameters())
    assert not any(p.requires_grad for p in backbone.layer2.parameters())
    assert not backbone.conv1.weight.requires_grad
    mobile = build_backbone("mobilenet_v3_large", trainable_layers=1)
    assert all(p.requires_grad for p in mobile.stages[-1].parameters())
    assert not any(p.requires_grad for p in mobile.stages[-2].parameters())


def test_bad_choices_raise() -> None:
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg16")
    with pytest.raises(ValueError, match="unknown norm"):
        build_backbone("resnet18", norm="layer")
    with pytest.raises(ValueError, match="BatchNorm statistics"):
        build_backbone("resnet18", pretrained=True, norm="gn")  # raised before any download
    with pytest.raises(ValueError, match="trainable_layers"):
        build_backbone("resnet18", trainable_layers=6)


def test_pretrained_weights_load_into_frozen_norms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ImageNet path without a download: torchvision's weight loader is handed a local state dict."""
    import torchvision.models._api as tv_api
    from torchvision.models import mobilenet_v3_large, resnet18

    torch.manual_seed(0)
    fake = {"resnet18": resnet18().state_dict(), "mobilenet": mobilenet_v3_large().state_dict()}
    urls: list[str] = []

    def fake_loader(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        urls.append(url)
        return fake["resnet18" if "resnet18" in url else "mobilenet"]

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", fake_loader)
    backbone = build_backbone("resnet18", pretrained=True)
    assert isinstance(backbone.bn1, FrozenBatchNorm2d)  # default norm with weights
    assert torch.equal(backbone.layer4[0].conv1.weight, fake["resnet18"]["layer4.0.conv1.weight"])
    assert torch.equal(backbone.bn1.running_var, fake["resnet18"]["bn1.running_var"])
    assert not backbone.layer1[0].conv1.weight.requires_grad and backbone.layer2[0].conv1.weight.requires_grad
    mobile = build_backbone("mobilenet_v3_large", pretrained=True)
    assert torch.equal(mobile.stages[0][0][0].weight, fake["mobilenet"]["features.0.0.weight"])
    assert len(urls) == 2
