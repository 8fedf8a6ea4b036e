"""Mask losses shared by the methods that predict whole masks per instance (SOLOv2, CondInst)."""

from __future__ import annotations

from torch import Tensor


def dice_loss(logits: Tensor, targets: Tensor, eps: float = 1e-3) -> Tensor:
    """Per-mask Dice loss ``1 - 2 sum(p t) / (sum p^2 + sum t^2 + eps)`` (Tensor[N]) of mask logits vs 0..1
    targets, both Tensor[N, H, W] (or [N, L]): it ignores the foreground/background pixel ratio, so small objects
    and large ones weigh the same without per-box normalisation (Milletari et al. 2016, as SOLO and CondInst)."""
    p, t = logits.sigmoid().flatten(1), targets.flatten(1)
    return 1.0 - 2.0 * (p * t).sum(1) / ((p * p).sum(1) + (t * t).sum(1) + eps)
