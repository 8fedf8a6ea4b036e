"""YOLACT's loss and YOLACT++ re-scoring pinned by hand-computed cases on hand-made raw outputs.

Every term is computed here from its definition (the paper's): the box crop inside the mask loss and its
normalisation by the box area, online hard-negative mining at 3 negatives per positive, and the re-scoring of
each detection by the predicted IoU of its box-cropped mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg import ImageBatch, Instances
from instseg.methods.yolact import YolactPostprocessor
from instseg.methods.yolact.loss import DEFAULT_WEIGHTS, YolactLoss

# a 32 x 32 padded input, prototypes at stride 4 (8 x 8); one object covering pixels [0, 16) x [0, 16), class 1
OBJECT_BOX = [0.0, 0.0, 16.0, 16.0]
NEGATIVE_BG_LOGITS = [3.0, 2.0, 1.0, 0.0, -1.0, -2.0, -3.0, -4.0]  # background logit of 8 negative anchors


def _target() -> Instances:
    masks = torch.zeros(1, 32, 32, dtype=torch.bool)
    masks[0, :16, :16] = True
    return Instances((32, 32), boxes=torch.tensor([OBJECT_BOX]), labels=torch.tensor([1]), masks=masks)


def _outputs() -> dict[str, Tensor]:
    """Anchor 0 is the object's box (positive); anchors 1..8 lie far from it (background)."""
    anchors = torch.tensor([OBJECT_BOX] + [[24.0, 24.0, 30.0, 30.0]] * 8)
    logits = torch.zeros(1, 9, 3)
    logits[0, 0] = torch.tensor([0.5, -1.0, 2.0])  # background, class 0, class 1
    logits[0, 1:, 0] = torch.tensor(NEGATIVE_BG_LOGITS)
    deltas = torch.zeros(1, 9, 4)
    deltas[0, 0, 0] = 0.5  # the encoded target of anchor 0 is 0 (anchor == box): smooth L1 = 0.5 * 0.5^2
    proto = torch.full((8, 8), 5.0)  # outside the box: confidently foreground, wrong, and must not count
    proto[:4, :4] = 2.0  # inside the box: right, except one cell
    proto[1, 2] = -1.0
    return {
        "class_logits": logits,
        "box_deltas": deltas,
        "mask_coeffs": torch.ones(1, 9, 1),
        "prototypes": proto[None, None],
        "anchors": anchors,
    }


def _ce(logits: list[float], target: int) -> float:
    return float(F.cross_entropy(torch.tensor([logits]), torch.tensor([target])))


class _FixedIoU(nn.Module):
    """Stand-in mask-IoU net: predicts ``scale * (c + 1) * mean(input)`` for class c, recording what it saw."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.seen: list[Tensor] = []

    def forward(self, masks: Tensor) -> Tensor:  # [n, 1, Hp, Wp] -> [n, 2]
        self.seen.append(masks.detach())
        mean = masks.flatten(1).mean(1, keepdim=True)
        return self.scale * mean * torch.tensor([[1.0, 2.0]])


def test_loss_terms_by_hand() -> None:
    loss = YolactLoss(num_classes=2, proto_stride=4, neg_pos_ratio=3, min_negatives=1)
    losses = loss(_outputs(), [_target()])
    # class: the positive (target class 1 -> index 2) and the 3 hardest negatives (lowest background logits)
    hardest = sorted(NEGATIVE_BG_LOGITS)[:3]
    expected_cls = _ce([0.5, -1.0, 2.0], 2) + sum(_ce([b, 0.0, 0.0], 0) for b in hardest)
    torch.testing.assert_close(losses["loss_class"], torch.tensor(expected_cls * DEFAULT_WEIGHTS["loss_class"]))
    torch.testing.assert_close(losses["loss_box"], torch.tensor(0.125 * DEFAULT_WEIGHTS["loss_box"]))
    # mask: BCE only over the 16 cells of the box (ground truth 1 there), divided by those 16 cells
    inside = (15 * F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(1.0))) / 16
    torch.testing.assert_close(losses["loss_mask"], inside * DEFAULT_WEIGHTS["loss_mask"])


def test_hard_negative_count_follows_the_ratio_and_the_minimum() -> None:
    outputs = _outputs()
    for ratio, minimum, count in [(2, 1, 2), (3, 5, 5), (3, 100, 8)]:
        losses = YolactLoss(num_classes=2, neg_pos_ratio=ratio, min_negatives=minimum)(outputs, [_target()])
        hardest = sorted(NEGATIVE_BG_LOGITS)[:count]  # at most the 8 negatives there are
        expected = _ce([0.5, -1.0, 2.0], 2) + sum(_ce([b, 0.0, 0.0], 0) for b in hardest)
        torch.testing.assert_close(losses["loss_class"], torch.tensor(expected), msg=f"ratio {ratio} min {minimum}")
    # an image without objects: only the minimum number of hardest negatives, summed (divided by max(0, 1))
    empty = Instances((32, 32), boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64))
    empty.masks = torch.zeros(0, 32, 32, dtype=torch.bool)
    losses = YolactLoss(num_classes=2, min_negatives=4)(outputs, [empty])
    all_negative = [[0.5, -1.0, 2.0]] + [[b, 0.0, 0.0] for b in NEGATIVE_BG_LOGITS]
    expected = sum(sorted(_ce(row, 0) for row in all_negative)[-4:])
    torch.testing.assert_close(losses["loss_class"], torch.tensor(expected))
    assert float(losses["loss_mask"]) == 0.0 and float(losses["loss_box"]) == 0.0


def test_mask_iou_target_uses_the_cropped_mask() -> None:
    net = _FixedIoU(scale=1.0)
    losses = YolactLoss(num_classes=2, min_negatives=1)(_outputs(), [_target()], mask_iou_net=net)
    (seen,) = net.seen
    assert float(seen[0, 0, 4:, :].abs().sum()) == 0.0 and float(seen[0, 0, :, 4:].abs().sum()) == 0.0
    predicted = 2.0 * float(seen.mean())  # class 1
    target_iou = 15 / 16  # the cropped prediction covers 15 of the object's 16 cells; outside is cropped away
    diff = abs(predicted - target_iou)
    expected = 0.5 * diff**2 if diff < 1 else diff - 0.5
    torch.testing.assert_close(losses["loss_mask_iou"], torch.tensor(expected * DEFAULT_WEIGHTS["loss_mask_iou"]))


def test_yolact_plus_plus_rescoring_by_hand() -> None:
    anchors = torch.tensor([[0.0, 0.0, 16.0, 16.0], [16.0, 16.0, 32.0, 32.0]])
    logits = torch.tensor([[[0.0, 4.0, 0.0], [0.0, 0.0, 3.0]]])  # anchor 0: class 0, anchor 1: class 1
    outputs = {
        "class_logits": logits,
        "box_deltas": torch.zeros(1, 2, 4),
        "mask_coeffs": torch.ones(1, 2, 1),
        "prototypes": torch.full((1, 1, 8, 8), 1.0),  # sigmoid(1) everywhere before the crop
        "anchors": anchors,
    }
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(32, 32)])
    post = YolactPostprocessor(score_threshold=0.05)
    (plain,) = post(outputs, images)
    net = _FixedIoU(scale=1.0)
    (rescored,) = post(outputs, images, mask_iou_net=net)
    p = float(torch.sigmoid(torch.tensor(1.0)))
    # each box covers 16 of the 64 prototype cells: the cropped mask's mean is p / 4; class c predicts (c + 1) p / 4
    assert plain.labels.tolist() == rescored.labels.tolist() == [0, 1]
    assert plain.scores is not None and rescored.scores is not None
    factor = torch.tensor([p / 4, 2 * p / 4])
    torch.testing.assert_close(rescored.scores, plain.scores * factor)
    (seen,) = net.seen
    assert torch.count_nonzero(seen[0, 0]) == 16 and torch.count_nonzero(seen[0, 0, :4, :4]) == 16
    assert torch.count_nonzero(seen[1, 0, 4:, 4:]) == 16
    # a predicted IoU above 1 is clamped: the score is never raised
    (clamped,) = post(outputs, images, mask_iou_net=_FixedIoU(scale=100.0))
    assert clamped.scores is not None
    torch.testing.assert_close(clamped.scores, plain.scores)


def test_objects_with_empty_boxes_add_nothing_to_the_loss() -> None:
    target = _target()
    vanished = Instances(
        (32, 32),
        boxes=torch.tensor([OBJECT_BOX, [20.0, 8.0, 20.0, 30.0]]),  # the second box has no width (cropped away)
        labels=torch.tensor([1, 0]),
        masks=torch.cat([target.masks, torch.zeros(1, 32, 32, dtype=torch.bool)]),  # type: ignore[list-item]
    )
    loss = YolactLoss(num_classes=2, min_negatives=1)
    expected, got = loss(_outputs(), [target]), loss(_outputs(), [vanished])
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, msg=key)


def test_head_starts_the_foreground_at_the_prior() -> None:
    from instseg.methods.yolact.head import PredictionHead

    head = PredictionHead(in_channels=8, num_classes=4, num_anchors=3, num_prototypes=2, channels=8, prior_prob=0.05)
    probs = head.cls.bias.detach().view(3, 5).softmax(dim=1)  # zero-mean small weights: the bias decides at start
    # background log K (1 - p) / p, classes 0: the K foreground classes share p (p / K each), background 1 - p
    torch.testing.assert_close(probs[:, 0], torch.full((3,), 0.95))
    torch.testing.assert_close(probs[:, 1:], torch.full((3, 4), 0.05 / 4))


def test_yolact_plus_plus_builder_turns_on_rescoring_and_deformable_convs() -> None:
    import instseg
    from instseg.methods.yolact import DeformConv2d

    plus = instseg.create_model("yolactpp_resnet18", num_classes=2, min_size=64, max_size=64)
    plain = instseg.create_model("yolact_resnet18", num_classes=2, min_size=64, max_size=64)
    assert plus.mask_iou_net is not None and plain.mask_iou_net is None
    assert any(isinstance(m, DeformConv2d) for m in plus.modules())
    assert not any(isinstance(m, DeformConv2d) for m in plain.modules())


def test_every_anchor_centre_lies_on_its_level_grid_inside_the_input() -> None:
    import instseg

    torch.manual_seed(0)
    model = instseg.create_model("yolact_resnet18", num_classes=2, min_size=128, max_size=128).eval()
    batch = ImageBatch.from_tensors([torch.rand(3, 128, 128) * 255], 32)
    with torch.no_grad():
        anchors = model(batch)["anchors"]  # [A, 4]: cells of every level (extra levels included), row by row
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert bool((centres > 0).all() and (centres < 128).all())
    # a level of stride s has its cell centres at (k + 0.5) s: the coarsest level (1 x 1 cell) is centred at 64
    torch.testing.assert_close(centres[-1], torch.tensor([64.0, 64.0]))
