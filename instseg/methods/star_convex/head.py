"""``StarConvexHead``: per-pixel object probability, ray distances and (optionally) class maps from U-Net features."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from instseg.backbones.norm import norm_layer


class StarConvexHead(nn.Module):
    """A 3x3 conv block and a 1x1 predictor on full-resolution features Tensor[B, C, H, W].

    ``forward`` returns:
      - ``prob_logits``: Tensor[B, 1, H, W], logit of the object probability (trained towards each object's
        normalised distance transform: 1 at its centre, towards 0 at its edge, 0 on background);
      - ``distances``: Tensor[B, n_rays, H, W] >= 0, in input pixels: the distance from each pixel to its
        object's edge along ray ``k`` (angle ``2 pi k / n_rays``, see ``instseg.ops.polar_rays``);
      - ``class_logits``: Tensor[B, K, H, W], only when ``num_classes > 1``.
    Distances are ``distance_scale * softplus(y)`` (positive, linear for long rays): the scale lets an optimiser
    step of the usual size move a ray by pixels rather than by a fraction of one (without it, rays of 10-60 px
    took hundreds of steps just to reach their lengths); their biases start at ``initial_distance`` pixels.
    """

    def __init__(
        self,
        in_channels: int,
        n_rays: int = 32,
        num_classes: int = 1,
        hidden_channels: int = 32,
        norm: str = "bn",
        initial_distance: float = 8.0,
        distance_scale: float = 8.0,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if n_rays < 3:
            raise ValueError(f"a polygon needs at least 3 rays, got n_rays={n_rays}")
        self.num_classes = num_classes
        self.n_rays = n_rays
        self.distance_scale = distance_scale
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=False),
            norm_layer(norm)(hidden_channels),
            nn.ReLU(inplace=True),
        )
        self.predict = nn.Conv2d(hidden_channels, 1 + n_rays + (num_classes if num_classes > 1 else 0), 1)
        bias = self.predict.bias
        assert bias is not None
        # softplus^-1(v) = log(exp(v) - 1)
        bias.data[1 : 1 + n_rays] = math.log(math.expm1(initial_distance / distance_scale))

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        y = self.predict(self.conv(features))  # [B, 1 + n (+K), H, W]
        n = self.n_rays
        out = {"prob_logits": y[:, 0:1], "distances": self.distance_scale * F.softplus(y[:, 1 : 1 + n])}
        if self.num_classes > 1:
            out["class_logits"] = y[:, 1 + n :]
        return out
