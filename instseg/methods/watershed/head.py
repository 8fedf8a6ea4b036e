"""``WatershedHead``: per-pixel foreground, normalised distance and (optionally) class maps from U-Net features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from instseg.backbones.norm import norm_layer


class WatershedHead(nn.Module):
    """A 3x3 conv block and a 1x1 predictor on full-resolution features Tensor[B, C, H, W].

    ``forward`` returns:
      - ``fg_logits``: Tensor[B, 1, H, W], foreground logit;
      - ``distance``: Tensor[B, 1, H, W] in [0, 1], each object's distance transform over its own maximum;
      - ``class_logits``: Tensor[B, K, H, W], only when ``num_classes > 1``.
    """

    def __init__(self, in_channels: int, num_classes: int = 1, hidden_channels: int = 32, norm: str = "bn") -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"methods/watershed/head.py: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=False),
            norm_layer(norm)(hidden_channels),
            nn.ReLU(inplace=True),
        )
        self.predict = nn.Conv2d(hidden_channels, 2 + (num_classes if num_classes > 1 else 0), 1)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        y = self.predict(self.conv(features))  # [B, 2 (+K), H, W]
        out = {"fg_logits": y[:, 0:1], "distance": torch.sigmoid(y[:, 1:2])}
        if self.num_classes > 1:
            out["class_logits"] = y[:, 2:]
        return out
