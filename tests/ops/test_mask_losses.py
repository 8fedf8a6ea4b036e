"""Dice loss on hand-made masks: 0 for a perfect mask, 1 for its complement, the value of a half overlap."""

from __future__ import annotations

import torch

from instseg.ops.mask_losses import dice_loss


def test_dice_loss_by_hand() -> None:
    target = torch.zeros(2, 4, 4)
    target[:, :2] = 1.0  # 8 pixels
    logits = torch.where(target > 0, 30.0, -30.0)
    assert torch.allclose(dice_loss(logits, target), torch.zeros(2), atol=1e-4)
    assert torch.allclose(dice_loss(-logits, target), torch.ones(2), atol=1e-4)
    half = torch.full((1, 4, 4), -30.0)
    half[0, :1] = 30.0  # 4 of the 8 target pixels: 1 - 2 * 4 / (4 + 8)
    assert torch.allclose(dice_loss(half, target[:1], eps=0.0), torch.tensor([1 - 8 / 12]), atol=1e-5)
