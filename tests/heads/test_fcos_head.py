"""FCOS head, losses and detection step: shapes, the zero-object batch, hand-made selections."""

from __future__ import annotations

import pytest
import torch

from instseg import Instances
from instseg.heads import FCOSHead, FCOSLoss, FCOSSelector
from instseg.ops.fcos import level_points


def _levels() -> list[torch.Tensor]:
    return [torch.randn(2, 16, 8, 8), torch.randn(2, 16, 4, 4)]


def test_head_shapes_and_positive_distances() -> None:
    head = FCOSHead(16, 3, [8, 16], channels=16, num_convs=2, extra_outputs=5)
    out = head(_levels())
    assert out["class_logits"].shape == (2, 80, 3) and out["box_ltrb"].shape == (2, 80, 4)
    assert out["centerness_logits"].shape == (2, 80) and out["extra"].shape == (2, 80, 5)
    assert (out["box_ltrb"] >= 0).all()
    with pytest.raises(ValueError, match="BatchNorm"):
        FCOSHead(16, 3, [8, 16], norm="bn")


def test_loss_trains_every_output_with_and_without_objects() -> None:
    torch.manual_seed(0)
    head = FCOSHead(16, 2, [8, 16], channels=16, num_convs=1)
    out = head(_levels())
    points, levels = level_points([(8, 8), (4, 4)], [8, 16])
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    masks[0, 10:30, 20:44] = True
    targets = [Instances((64, 64), labels=torch.tensor([1]), masks=masks), Instances.empty((64, 64))]
    loss = FCOSLoss(2, [(0, 32), (32, 1e9)])
    matched = loss.assign(points, levels, [8, 16], targets)
    assert (matched[0] == 0).any() and (matched[1] == -1).all()
    losses = loss(out, points, matched, targets)
    assert set(losses) == {"loss_class", "loss_box", "loss_centerness"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    empty = loss(out, points, loss.assign(points, levels, [8, 16], targets[1:] * 2), targets[1:] * 2)
    assert empty["loss_box"].item() == 0.0 and empty["loss_class"].item() > 0
    sum(empty.values()).backward()  # type: ignore[union-attr]
    assert all(p.grad is not None for p in head.parameters())


def test_selector_scores_decodes_and_suppresses() -> None:
    logit = lambda p: torch.log(torch.tensor(p) / (1 - torch.tensor(p)))  # noqa: E731
    cls = torch.full((3, 2), -20.0)
    cls[0, 0], cls[1, 0], cls[2, 1] = logit(0.9), logit(0.8), logit(0.5)
    ctr = torch.stack([logit(0.4), logit(0.9), logit(0.9)])
    points = torch.tensor([[10.0, 10.0], [11.0, 10.0], [50.0, 50.0]])
    ltrb = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0], [60.0, 4.0, 20.0, 4.0]])
    idx, boxes, scores, labels = FCOSSelector(score_threshold=0.3, nms_iou=0.5)(cls, ltrb, ctr, points, (60, 64))
    # point 1 (sqrt(0.8 * 0.9) = 0.849) beats point 0 (sqrt(0.9 * 0.4) = 0.6) and suppresses it (IoU 0.82)
    assert idx.tolist() == [1, 2] and labels.tolist() == [0, 1]
    assert torch.allclose(scores, torch.tensor([0.72, 0.45]).sqrt())
    assert boxes[1].tolist() == [0.0, 46.0, 64.0, 54.0]  # clipped to the 64-wide image
