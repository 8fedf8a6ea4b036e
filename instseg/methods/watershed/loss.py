"""``WatershedLoss``: foreground BCE + Dice, distance regression inside objects, optional per-pixel class CE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.ops.instance_maps import batch_class_maps, batch_distance_maps, batch_label_maps
from instseg.structures import Instances


def soft_dice_loss(logits: Tensor, target: Tensor, valid: Tensor, smooth: float = 1.0) -> Tensor:
    """Mean over images of ``1 - Dice`` between sigmoid(logits) and a 0/1 target (all Tensor[B, 1, H, W]).

    Dice counters the imbalance between a few small objects and a large background that BCE alone suffers
    from; ``smooth`` makes an empty image with an empty prediction score 0 loss.
    """
    prob = torch.sigmoid(logits) * valid
    target = target * valid
    inter = (prob * target).flatten(1).sum(1)
    total = prob.flatten(1).sum(1) + target.flatten(1).sum(1)
    return (1.0 - (2.0 * inter + smooth) / (total + smooth)).mean()


class WatershedLoss(nn.Module):
    """Losses of the watershed method, targets built on the fly from ``Instances`` masks.

    - ``loss_fg``: BCE (+ ``dice_weight`` x soft Dice) between ``fg_logits`` and the union of the masks;
    - ``loss_distance``: mean squared error between ``distance`` and the per-object normalised distance
      transform (``instseg.ops.instance_maps.normalized_distance_map``), on foreground pixels only: the
      watershed reads the distance only there;
    - ``loss_class``: per-pixel cross-entropy on foreground pixels (only with ``class_logits``).
    Padding pixels of the batch never count.
    """

    def __init__(
        self,
        fg_weight: float = 1.0,
        dice_weight: float = 1.0,
        distance_weight: float = 5.0,
        class_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.fg_weight = fg_weight
        self.dice_weight = dice_weight
        self.distance_weight = distance_weight
        self.class_weight = class_weight

    def forward(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        fg_logits = outputs["fg_logits"]  # [B, 1, H, W]
        if len(targets) != fg_logits.shape[0]:
            raise ValueError(f"methods/watershed/loss.py: {len(targets)} targets for a batch of {fg_logits.shape[0]}")
        label_maps, valid_maps = batch_label_maps([t.to(fg_logits.device) for t in targets], fg_logits.shape[-2:])
        fg = (label_maps > 0).unsqueeze(1).float()  # [B, 1, H, W]
        valid = valid_maps.unsqueeze(1).float()
        n_valid = valid.sum().clamp(min=1.0)

        bce = F.binary_cross_entropy_with_logits(fg_logits, fg, reduction="none")
        loss_fg = (bce * valid).sum() / n_valid
        if self.dice_weight > 0:
            loss_fg = loss_fg + self.dice_weight * soft_dice_loss(fg_logits, fg, valid)

        distance_target = batch_distance_maps(label_maps).unsqueeze(1)  # [B, 1, H, W]
        fg_valid = fg * valid
        sq = (outputs["distance"] - distance_target) ** 2
        loss_distance = (sq * fg_valid).sum() / fg_valid.sum().clamp(min=1.0)

        losses = {"loss_fg": self.fg_weight * loss_fg, "loss_distance": self.distance_weight * loss_distance}
        if "class_logits" in outputs:
            classes = batch_class_maps(label_maps, valid_maps, targets)  # [B, H, W], -100 = ignore
            ce = F.cross_entropy(outputs["class_logits"], classes, ignore_index=-100, reduction="sum")
            losses["loss_class"] = self.class_weight * ce / (classes >= 0).sum().clamp(min=1)
        return losses
