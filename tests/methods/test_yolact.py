"""YOLACT: anchor matching, the box-cropped mask loss, deformable convs, overfitting, post-processing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from instseg import ImageBatch, Instances
from instseg.backbones import build_backbone
from instseg.methods.yolact import (
    AnchorGrid,
    DeformConv2d,
    YolactPostprocessor,
    build_yolact,
    make_backbone_deformable,
    match_anchors,
)
from instseg.methods.yolact.loss import box_crop, cropped_mask_loss


def test_anchor_grid_layout() -> None:
    grid = AnchorGrid([8.0], aspect_ratios=(1.0, 0.5, 2.0))
    anchors = grid([(2, 3)], [4], torch.device("cpu"))
    assert anchors.shape == (2 * 3 * 3, 4)
    # first cell, ratio 1: an 8x8 box centred at (2, 2); ratio 2 is twice as wide as high
    assert torch.allclose(anchors[0], torch.tensor([-2.0, -2.0, 6.0, 6.0]))
    w, h = anchors[2, 2] - anchors[2, 0], anchors[2, 3] - anchors[2, 1]
    assert torch.isclose(w / h, torch.tensor(2.0)) and torch.isclose(w * h, torch.tensor(64.0))
    # cells go row by row: the second cell is one stride to the right
    assert torch.allclose(anchors[3] - anchors[0], torch.tensor([4.0, 0.0, 4.0, 0.0]))


def test_match_anchors_hand_made() -> None:
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 with box 0 -> positive
            [4.0, 0.0, 14.0, 10.0],  # IoU 0.43 with box 0 -> ignored
            [20.0, 20.0, 30.0, 30.0],  # no overlap -> background
            [40.0, 40.0, 52.0, 52.0],  # IoU 0.11 with the small box 1, but its best anchor -> positive
        ]
    )
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [40.0, 40.0, 44.0, 44.0]])
    matched, state = match_anchors(anchors, boxes, 0.5, 0.4)
    assert state.tolist() == [1, -1, 0, 1]
    assert matched[0] == 0 and matched[3] == 1
    _, state = match_anchors(anchors, torch.zeros((0, 4)))
    assert state.tolist() == [0, 0, 0, 0]


def test_box_crop_and_cropped_mask_loss() -> None:
    crop = box_crop(torch.tensor([[2.0, 2.0, 10.0, 6.0]]), (4, 4), stride=4.0)  # grid x 0.5..2.5, y 0.5..1.5
    expected = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected[0, 0:2, 0:3] = True
    assert torch.equal(crop, expected)

    # zero logits: BCE is log 2 on every pixel, so the area-normalised loss is log 2 whatever the box size
    target = torch.zeros(1, 4, 4)
    assert torch.allclose(cropped_mask_loss(torch.zeros(1, 4, 4), target, crop), torch.tensor([math.log(2.0)]))
    # right inside the box, wrong outside it: nothing outside the box counts
    target[0, 0:2, 0:3] = 1.0
    logits = torch.full((1, 4, 4), 20.0)
    assert cropped_mask_loss(logits, target, crop).item() < 1e-6
    logits[0, 1, 1] = -20.0  # one wrong pixel of six inside the box
    assert torch.allclose(cropped_mask_loss(logits, target, crop), torch.tensor([20.0 / 6]), atol=1e-4)


@pytest.mark.parametrize("modulated", [False, True])
def test_deform_conv_with_zero_offsets_is_a_conv(modulated: bool) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
    deform = DeformConv2d.from_conv(conv, modulated=modulated)
    x = torch.randn(2, 4, 9, 11)
    assert torch.allclose(deform(x), conv(x), atol=1e-5)
    deform(x).sum().backward()
    assert deform.offset.weight.grad is not None and deform.weight.grad is not None


def test_deformable_backbone_keeps_its_function() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", norm="gn").eval()
    x = torch.randn(1, 3, 64, 64)
    before = backbone(x)["c5"]
    assert make_backbone_deformable(backbone, ("layer3", "layer4"), interval=3) == 2
    assert isinstance(backbone.layer4[0].conv2, DeformConv2d)
    assert torch.allclose(backbone(x)["c5"], before, atol=1e-4)


def _tiny_model(**options: object) -> torch.nn.Module:
    backbone = build_backbone("resnet18", norm="gn")
    return build_yolact(
        backbone,
        num_classes=2,
        min_size=None,
        max_size=None,
        fpn_channels=32,
        head_channels=32,
        proto_channels=32,
        num_prototypes=8,
        anchor_sizes=(16, 32, 64, 128, 256),
        **options,  # type: ignore[arg-type]
    )


def test_overfits_one_image() -> None:
    torch.manual_seed(0)
    model = _tiny_model(mask_rescoring=True).train()
    image = torch.full((3, 64, 64), 40.0)
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 8:30, 6:28] = True
    masks[1, 36:60, 34:62] = True
    image[:, masks[0]] = 220.0
    image[:, masks[1]] = 130.0
    targets = [Instances((64, 64), labels=torch.tensor([0, 1]), masks=masks)]
    batch = ImageBatch.from_tensors([image], 32)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    history = []
    for _ in range(40):
        losses = model.loss(model(batch, targets), targets)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()  # type: ignore[union-attr]
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    assert set(history[0]) == {"loss_class", "loss_box", "loss_mask", "loss_semantic", "loss_mask_iou"}
    first, last = sum(history[0].values()), sum(history[-1].values())
    assert last < 0.5 * first, (first, last)
    assert history[-1]["loss_mask"] < history[0]["loss_mask"]


def _outputs(class_logits: torch.Tensor, anchors: torch.Tensor) -> dict[str, torch.Tensor]:
    """Hand-made raw outputs: boxes equal to the anchors, one prototype that is 1 everywhere, coefficient 1."""
    a = anchors.shape[0]
    return {
        "class_logits": class_logits[None],
        "box_deltas": torch.zeros(1, a, 4),
        "mask_coeffs": torch.ones(1, a, 1),
        "prototypes": torch.full((1, 1, 8, 8), 5.0),  # a 32x32 padded input at stride 4
        "anchors": anchors,
    }


def test_postprocess_fast_nms_and_original_size() -> None:
    anchors = torch.tensor([[2.0, 2.0, 18.0, 18.0], [3.0, 3.0, 19.0, 19.0], [20.0, 4.0, 30.0, 12.0]])
    logits = torch.tensor([[0.0, 6.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 6.0]])  # background, class 0, class 1
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(64, 64)])
    post = YolactPostprocessor(score_threshold=0.3, nms_iou=0.5)
    (result,) = post(_outputs(logits, anchors), images)
    # the two overlapping class-0 boxes give one detection; the class-1 box is kept
    assert result.image_size == (64, 64) and len(result) == 2
    assert result.labels.tolist() == [0, 1]
    assert result.scores is not None and ((result.scores > 0) & (result.scores <= 1)).all()
    assert result.masks is not None and result.masks.shape == (2, 64, 64)
    # masks fill the predicted boxes, scaled x2 to the original size
    assert torch.allclose(result.boxes[0], torch.tensor([4.0, 4.0, 36.0, 36.0]))
    assert torch.allclose(result.boxes[1], torch.tensor([40.0, 8.0, 60.0, 24.0]))
    assert int(result.masks[0].sum()) == 32 * 32


def test_postprocess_without_detections_is_empty() -> None:
    anchors = torch.tensor([[2.0, 2.0, 18.0, 18.0]])
    logits = torch.tensor([[8.0, 0.0, 0.0]])
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 24)], [(50, 37)])
    (result,) = YolactPostprocessor()(_outputs(logits, anchors), images)
    assert len(result) == 0 and result.image_size == (50, 37)
    assert result.masks is not None and result.masks.shape == (0, 50, 37) and result.masks.dtype == torch.bool
    assert result.scores is not None and result.scores.shape == (0,)
    assert result.boxes.shape == (0, 4) and result.labels.dtype == torch.int64


def test_semantic_head_only_in_training() -> None:
    model = _tiny_model().eval()
    batch = ImageBatch.from_tensors([torch.rand(3, 64, 48) * 255], 32)
    with torch.no_grad():
        out = model(batch)
    assert "semantic_logits" not in out
    num_anchors = 3 * sum(math.ceil(64 / s) * math.ceil(64 / s) for s in (8, 16, 32, 64, 128))
    assert out["class_logits"].shape == (1, num_anchors, 3) and out["anchors"].shape == (num_anchors, 4)
    assert out["prototypes"].shape == (1, 8, 16, 16)
    assert F.relu(out["prototypes"]).equal(out["prototypes"])


def test_light_model_norms_and_no_batchnorm_in_the_shared_head() -> None:
    from torch import nn

    from instseg.registry import create_model

    model = create_model("yolact_light_mobilenetv3", num_classes=3)
    assert isinstance(model.head.shared[1], nn.GroupNorm)  # shared by the levels
    assert isinstance(model.protonet.before[0][1], nn.BatchNorm2d)  # one level: foldable
    with pytest.raises(ValueError, match="shared by all pyramid levels"):
        create_model("yolact_light_mobilenetv3", num_classes=3, head_norm="bn")
