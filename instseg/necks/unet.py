"""U-Net decoder (Ronneberger et al. 2015) over any multi-scale encoder, shared by the bottom-up methods.

``UNetDecoder`` climbs from the coarsest feature map to the finest, upsampling and concatenating each skip
connection; ``UNet`` wraps an encoder (any ``instseg.backbones.Backbone``) and the decoder into a network that
maps Tensor[B, C, H, W] images to Tensor[B, out_channels, H, W] features at full resolution, for any H, W
(inputs are padded to the encoder's largest stride and cropped back). ``SmallUNet`` is the classic U-Net
trained from scratch, the default for microscopy (its per-image intensity rule is
``instseg.ops.intensity.percentile_normalize``); ``backbone_unet`` puts a named backbone under the decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.backbones import build_backbone
from instseg.backbones.backbone import Backbone
from instseg.backbones.norm import norm_layer

NormLayer = Callable[[int], nn.Module]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by a norm and ReLU: the U-Net building block (keeps H, W)."""

    def __init__(self, in_channels: int, out_channels: int, norm: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            norm(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            norm(out_channels),
            nn.ReLU(inplace=True),
        )


class UNetEncoder(Backbone):
    """The contracting path of the original U-Net: ``ConvBlock``s separated by 2x2 max pooling.

    ``forward(Tensor[B, C, H, W]) -> {"s1": Tensor[B, c0, H, W], "s2": Tensor[B, c1, H/2, W/2], ...}`` with
    ``channels[i] = base_channels * 2**i`` at stride ``2**i`` (H, W divisible by the last stride).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 32, depth: int = 4, norm: str = "bn") -> None:
        if depth < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        channels = [base_channels * 2**i for i in range(depth + 1)]
        strides = [2**i for i in range(depth + 1)]
        super().__init__([f"s{s}" for s in strides], channels, strides)
        make_norm = norm_layer(norm)
        self.blocks = nn.ModuleList()
        previous = in_channels
        for c in channels:
            self.blocks.append(ConvBlock(previous, c, make_norm))
            previous = c

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features: dict[str, Tensor] = {}
        for i, (name, block) in enumerate(zip(self.feature_names, self.blocks, strict=True)):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            features[name] = x
        return features


class UNetDecoder(nn.Module):
    """The expanding path: from the coarsest map, repeatedly upsample, concatenate the next finer skip, convolve.

    ``forward(list of Tensor[B, in_channels[i], H_i, W_i], finest first) -> Tensor[B, channels[0], H_0, W_0]``.
    Upsampling is bilinear to the skip's exact size (followed by convolutions) rather than a transposed
    convolution, which avoids checkerboard artefacts and handles odd sizes.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: Sequence[int] | None = None,
        norm: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise ValueError(f"the decoder needs at least two feature levels, got {len(in_channels)}")
        # default widths: the skip's own width, capped at 256 so that ResNet-50-like encoders stay cheap
        channels = list(channels) if channels is not None else [min(c, 256) for c in in_channels[:-1]]
        if len(channels) != len(in_channels) - 1:
            raise ValueError(
                f"decoder needs one width per level but the coarsest ({len(in_channels) - 1}), got {len(channels)}"
            )
        self.out_channels = channels[0]
        self.blocks = nn.ModuleList()
        below = in_channels[-1]
        for level in range(len(in_channels) - 2, -1, -1):
            self.blocks.append(ConvBlock(below + in_channels[level], channels[level], norm))
            below = channels[level]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = features[-1]
        for block, skip in zip(self.blocks, reversed(features[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return x


class UNet(nn.Module):
    """Encoder + ``UNetDecoder``: ``forward(Tensor[B, C, H, W]) -> Tensor[B, out_channels, H, W]`` for any H, W.

    A stride-1 ``ConvBlock`` on the image (``full_res_channels`` > 0) gives the decoder a full-resolution skip
    when the encoder's finest map is coarser (ResNets start at stride 4), so that thin gaps between touching
    objects survive. Inputs are zero-padded bottom/right to a multiple of the encoder's largest stride and the
    output is cropped back; if the decoder still ends above stride 1 it is upsampled bilinearly.
    """

    def __init__(
        self,
        encoder: Backbone,
        decoder_channels: Sequence[int] | None = None,
        full_res_channels: int = 0,
        in_channels: int = 3,
        norm: str = "bn",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        make_norm = norm_layer(norm)
        skip_channels = list(encoder.feature_channels)
        self.stem: nn.Module | None = None
        if full_res_channels > 0 and encoder.feature_strides[0] > 1:
            self.stem = ConvBlock(in_channels, full_res_channels, make_norm)
            skip_channels = [full_res_channels, *skip_channels]
        self.decoder = UNetDecoder(skip_channels, decoder_channels, make_norm)
        self.out_channels = self.decoder.out_channels
        self.stride = max(encoder.feature_strides)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pad_h = (self.stride - h % self.stride) % self.stride
        pad_w = (self.stride - w % self.stride) % self.stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        feats = self.encoder(x)
        features = list(feats.values()) if isinstance(feats, dict) else list(feats)
        if self.stem is not None:
            features = [self.stem(x), *features]
        y = self.decoder(features)  # [B, out_channels, H', W']
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y[..., :h, :w]


class SmallUNet(UNet):
    """The original U-Net trained from scratch: ``depth`` poolings, widths ``base_channels * 2**i``, full-res output."""

    def __init__(self, in_channels: int = 3, base_channels: int = 32, depth: int = 4, norm: str = "bn") -> None:
        super().__init__(UNetEncoder(in_channels, base_channels, depth, norm), in_channels=in_channels, norm=norm)


def backbone_unet(name: str, pretrained_backbone: bool = False) -> UNet:
    """A U-Net over the ``instseg.backbones`` encoder ``name`` (decoder widths 32..256, a 32-channel full-resolution
    skip): the network of the bottom-up methods on a ResNet (ImageNet weights fetched only if
    ``pretrained_backbone``)."""
    backbone = build_backbone(name, pretrained=pretrained_backbone)
    return UNet(backbone, decoder_channels=[32, 64, 128, 256], full_res_channels=32)
