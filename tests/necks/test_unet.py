"""U-Net decoder over any encoder and the from-scratch SmallUNet."""

from __future__ import annotations

import pytest
import torch

from instseg.backbones import ResNetBackbone
from instseg.necks.unet import SmallUNet, UNet, UNetDecoder, UNetEncoder


@pytest.mark.parametrize("size", [(64, 64), (100, 130), (33, 47)])
def test_small_unet_keeps_any_input_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = SmallUNet(3, base_channels=4, depth=3)
    y = net(torch.randn(2, 3, *size))
    assert y.shape == (2, net.out_channels, *size)
    assert net.out_channels == 4


def test_small_unet_backward() -> None:
    net = SmallUNet(3, base_channels=4, depth=2, norm="gn")
    y = net(torch.randn(1, 3, 40, 24))
    y.mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_encoder_reports_channels_and_strides() -> None:
    enc = UNetEncoder(3, base_channels=8, depth=3)
    assert enc.feature_channels == [8, 16, 32, 64] and enc.feature_strides == [1, 2, 4, 8]
    feats = enc(torch.randn(1, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in feats.values()] == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4)]


def test_unet_over_a_resnet_gets_a_full_resolution_output() -> None:
    backbone = ResNetBackbone("resnet18", pretrained=False)  # strides 4..32: needs the stride-1 skip or an upsample
    net = UNet(backbone, decoder_channels=[16, 16, 32, 64], full_res_channels=8)
    assert net.stride == 32 and net.out_channels == 16
    assert net(torch.randn(1, 3, 100, 130)).shape == (1, 16, 100, 130)
    plain = UNet(backbone, decoder_channels=[8, 16, 32], full_res_channels=0)
    assert plain.out_channels == 8
    assert plain(torch.randn(1, 3, 70, 50)).shape == (1, 8, 70, 50)


def test_decoder_rejects_bad_widths() -> None:
    with pytest.raises(ValueError, match="at least two feature levels"):
        UNetDecoder([8])
    with pytest.raises(ValueError, match="one width per level"):
        UNetDecoder([8, 16, 32], channels=[8])
    with pytest.raises(ValueError, match="depth"):
        UNetEncoder(depth=0)
