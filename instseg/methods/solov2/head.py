"""SOLOv2 heads: the instance head (category + dynamic-kernel branches on S x S grids) and the mask-feature branch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.backbones.norm import check_shared_head_norm, norm_layer


def conv_norm_relu(in_channels: int, out_channels: int, norm: str, kernel_size: int = 3) -> nn.Sequential:
    """Conv (no bias: the norm has one) -> norm (``"gn"``, ``"bn"``) -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        norm_layer(norm)(out_channels),
        nn.ReLU(inplace=True),
    )


def coordinate_maps(x: Tensor) -> Tensor:
    """Normalised pixel coordinates (Tensor[B, 2, H, W], x then y, in -1..1) for a map ``x`` Tensor[B, C, H, W]."""
    b, _, h, w = x.shape
    # arange in the input's dtype rather than linspace: traced for ONNX, linspace becomes float64
    ys = torch.arange(h, device=x.device, dtype=x.dtype) * (2.0 / max(h - 1, 1)) - 1.0
    xs = torch.arange(w, device=x.device, dtype=x.dtype) * (2.0 / max(w - 1, 1)) - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])[None].expand(b, 2, h, w)


class SOLOv2InstanceHead(nn.Module):
    """Category and kernel branches shared over the pyramid levels (SOLOv2, Sec. 3.2).

    ``forward(features)`` takes one map per level (Tensor[B, C, H_l, W_l], finest first), resizes level ``l`` to
    its ``num_grids[l]`` x ``num_grids[l]`` grid and returns, flattened over levels and grid cells (G = sum S_l^2,
    row-major inside a level, levels in order):
      - ``cls_logits``: Tensor[B, G, K], category logits of each cell (sigmoid classifiers);
      - ``kernels``: Tensor[B, G, E], the 1x1 dynamic conv kernel of each cell for the E-channel mask features.
    The kernel branch sees two extra coordinate channels (CoordConv) so that kernels can depend on position.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        kernel_channels: int,
        num_grids: Sequence[int],
        head_channels: int = 512,
        num_convs: int = 4,
        norm: str = "gn",
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"methods/solov2/head.py: num_convs must be >= 1, got {num_convs}")
        check_shared_head_norm(norm, "methods/solov2/head.py: SOLOv2InstanceHead")
        self.num_grids = [int(s) for s in num_grids]
        self.num_classes = num_classes
        self.kernel_channels = kernel_channels
        cls_in = [in_channels] + [head_channels] * (num_convs - 1)
        kernel_in = [in_channels + 2] + [head_channels] * (num_convs - 1)
        self.cls_tower = nn.Sequential(*(conv_norm_relu(c, head_channels, norm) for c in cls_in))
        self.kernel_tower = nn.Sequential(*(conv_norm_relu(c, head_channels, norm) for c in kernel_in))
        self.cls_pred = nn.Conv2d(head_channels, num_classes, 3, padding=1)
        self.kernel_pred = nn.Conv2d(head_channels, kernel_channels, 3, padding=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # focal-loss prior: every cell starts as background with probability 1 - prior_prob (Lin et al., 2017)
        nn.init.constant_(
            self.cls_pred.bias,  # type: ignore[arg-type]
            -math.log((1.0 - prior_prob) / prior_prob),
        )

    def forward(self, features: Sequence[Tensor]) -> dict[str, Tensor]:
        if len(features) != len(self.num_grids):
            raise ValueError(f"methods/solov2/head.py: {len(features)} feature levels for {len(self.num_grids)} grids")
        cls_out, kernel_out = [], []
        for x, s in zip(features, self.num_grids, strict=True):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)  # [B, C, S, S]
            kernel = self.kernel_pred(self.kernel_tower(torch.cat([x, coordinate_maps(x)], dim=1)))  # [B, E, S, S]
            cls = self.cls_pred(self.cls_tower(x))  # [B, K, S, S]
            cls_out.append(cls.flatten(2).transpose(1, 2))  # [B, S*S, K]
            kernel_out.append(kernel.flatten(2).transpose(1, 2))  # [B, S*S, E]
        return {"cls_logits": torch.cat(cls_out, dim=1), "kernels": torch.cat(kernel_out, dim=1)}


class SOLOv2MaskBranch(nn.Module):
    """Unified mask features (SOLOv2, Sec. 3.2.2): P2..P5 fused at 1/4 scale into E channels.

    Level ``i`` (stride ``4 * 2**i``) goes through ``max(i, 1)`` blocks of 3x3 conv + norm + ReLU, each but the
    first-level one followed by a 2x bilinear upsampling; the coarsest level gets two coordinate channels first.
    The maps are summed and a 1x1 conv + norm + ReLU gives ``mask_features`` Tensor[B, E, H/4, W/4].
    """

    def __init__(
        self, in_channels: int, num_levels: int = 4, mid_channels: int = 128, out_channels: int = 256, norm: str = "gn"
    ) -> None:
        super().__init__()
        if num_levels < 1:
            raise ValueError(f"methods/solov2/head.py: num_levels must be >= 1, got {num_levels}")
        self.num_levels = num_levels
        self.levels = nn.ModuleList()
        for i in range(num_levels):
            first_in = in_channels + (2 if i == num_levels - 1 else 0)
            blocks: list[nn.Module] = []
            for j in range(max(i, 1)):
                blocks.append(conv_norm_relu(first_in if j == 0 else mid_channels, mid_channels, norm))
                if i > 0:
                    blocks.append(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False))
            self.levels.append(nn.Sequential(*blocks))
        self.fuse = conv_norm_relu(mid_channels, out_channels, norm, kernel_size=1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """``features``: the ``num_levels`` finest pyramid maps (strides 4, 8, ...); returns Tensor[B, E, H/4, W/4]."""
        fused: Tensor | None = None
        for i, (x, level) in enumerate(zip(features[: self.num_levels], self.levels, strict=True)):
            if i == self.num_levels - 1:
                x = torch.cat([x, coordinate_maps(x)], dim=1)
            y = level(x)
            if fused is not None and y.shape[-2:] != fused.shape[-2:]:  # odd sizes; cannot happen with /32 padding
                y = F.interpolate(y, size=fused.shape[-2:], mode="bilinear", align_corners=False)
            fused = y if fused is None else fused + y
        assert fused is not None
        return self.fuse(fused)
