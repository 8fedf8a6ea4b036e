"""YOLACT's networks on the feature pyramid: extra levels, the protonet, the shared prediction head, mask re-scoring."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.backbones import norm_layer
from instseg.backbones.norm import check_shared_head_norm


def conv_block(in_channels: int, out_channels: int, norm: str | None = None, stride: int = 1) -> nn.Sequential:
    """3x3 conv (+ norm) + ReLU; with ``norm="bn"`` the pair folds into one conv for inference."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=norm is None)]
    if norm is not None:
        layers.append(norm_layer(norm)(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ExtraLevels(nn.Module):
    """Coarser pyramid levels from the coarsest FPN map by stride-2 3x3 convs (P6 and P7 from P5, as in YOLACT).

    ``forward(Tensor[B, C, H, W]) -> list[Tensor]``: ``num_levels`` maps, each at half the previous size.
    """

    def __init__(self, channels: int, num_levels: int = 2) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, 2, 1) for _ in range(num_levels))

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for i, conv in enumerate(self.convs):
            x = conv(F.relu(x) if i > 0 else x)
            out.append(x)
        return out


class ProtoNet(nn.Module):
    """Prototype masks from the finest pyramid level: ``num_convs`` 3x3 convs, x2 upsampling, a 3x3 conv, and a 1x1
    conv to ``num_prototypes`` maps with a ReLU (unbounded positive prototypes, as in the paper).

    ``forward(Tensor[B, C, H, W]) -> Tensor[B, k, 2H, 2W]``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        num_prototypes: int = 32,
        num_convs: int = 3,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.before = nn.Sequential(
            *(conv_block(in_channels if i == 0 else channels, channels, norm) for i in range(num_convs))
        )
        self.after = conv_block(channels if num_convs else in_channels, channels, norm)
        self.predict = nn.Conv2d(channels, num_prototypes, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.before(x)
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.relu(self.predict(self.after(x)))


class PredictionHead(nn.Module):
    """The head shared by every pyramid level: a 3x3 conv, then three 3x3 convs predicting, for each of the
    ``num_anchors`` anchors of a cell, ``K + 1`` class logits (index 0 = background, softmax), 4 box deltas and
    ``num_prototypes`` mask coefficients in [-1, 1] (tanh).

    ``forward(list of Tensor[B, C, H_l, W_l]) -> (class_logits [B, A, K+1], box_deltas [B, A, 4],
    mask_coeffs [B, A, k])`` with ``A = sum_l H_l W_l num_anchors`` in ``AnchorGrid`` order.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_anchors: int,
        num_prototypes: int = 32,
        channels: int = 256,
        norm: str | None = None,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        check_shared_head_norm(norm, "methods/yolact/head.py: PredictionHead")
        self.num_classes, self.num_anchors, self.num_prototypes = num_classes, num_anchors, num_prototypes
        self.shared = conv_block(in_channels, channels, norm)
        self.cls = nn.Conv2d(channels, num_anchors * (num_classes + 1), 3, padding=1)
        self.box = nn.Conv2d(channels, num_anchors * 4, 3, padding=1)
        self.coef = nn.Conv2d(channels, num_anchors * num_prototypes, 3, padding=1)
        for conv in (self.cls, self.box, self.coef):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        # start with the foreground classes together at ``prior_prob`` (each at prior_prob / K): a softmax over
        # thousands of anchors is otherwise flooded by background gradients at the first steps (the focal-loss prior)
        with torch.no_grad():
            bias = self.cls.bias.view(num_anchors, num_classes + 1)  # type: ignore[union-attr]
            bias[:, 0] = math.log(num_classes * (1 - prior_prob) / prior_prob)

    def _flatten(self, x: Tensor, channels: int) -> Tensor:
        b, _, h, w = x.shape
        return x.view(b, self.num_anchors, channels, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, channels)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        cls, box, coef = [], [], []
        for x in features:
            x = self.shared(x)
            cls.append(self._flatten(self.cls(x), self.num_classes + 1))
            box.append(self._flatten(self.box(x), 4))
            coef.append(self._flatten(self.coef(x), self.num_prototypes))
        return torch.cat(cls, 1), torch.cat(box, 1), torch.tanh(torch.cat(coef, 1))


class MaskIoUNet(nn.Module):
    """YOLACT++'s fast mask re-scoring branch: predicts the IoU of a mask with its object from the mask alone.

    Five stride-2 3x3 convs with ReLU, a 1x1 conv to one output per class, and a global max pool (six convs and a
    max pool, as in the paper). ``forward(Tensor[N, 1, H, W]) -> Tensor[N, K]`` (unbounded regression of the IoU;
    callers read the entry of the mask's class).
    """

    def __init__(self, num_classes: int, channels: Sequence[int] = (8, 16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 1
        for c in channels:
            layers += [nn.Conv2d(previous, c, 3, 2, 1), nn.ReLU(inplace=True)]
            previous = c
        layers.append(nn.Conv2d(previous, num_classes, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, masks: Tensor) -> Tensor:
        return self.net(masks).amax(dim=(2, 3))
