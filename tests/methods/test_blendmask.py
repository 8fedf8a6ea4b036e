"""BlendMask: output shapes, mask targets, the zero-object loss, post-processing, overfitting one image."""

from __future__ import annotations

import math

import pytest
import torch

from instseg import ImageBatch, Instances
from instseg.backbones import build_backbone
from instseg.methods.blendmask import BlendMaskPostprocessor, box_mask_targets, build_blendmask
from instseg.ops.fcos import level_points


def _tiny_model(**options: object) -> torch.nn.Module:
    options = {
        "fpn_channels": 32,
        "head_channels": 32,
        "head_convs": 1,
        "bottom_channels": 32,
        "bottom_convs": 1,
        "attention_size": 7,
        "resolution": 28,
        **options,
    }
    return build_blendmask(build_backbone("mobilenet_v3_large", norm="bn"), 2, None, None, **options)  # type: ignore[arg-type]


def test_forward_shapes() -> None:
    model = _tiny_model().eval()
    batch = ImageBatch.from_tensors([torch.rand(3, 64, 96) * 255], 32)
    with torch.no_grad():
        out = model(batch)
    num_points = sum(math.ceil(64 / s) * math.ceil(96 / s) for s in (8, 16, 32, 64))
    assert out["class_logits"].shape == (1, num_points, 2)
    assert out["box_ltrb"].shape == (1, num_points, 4) and bool((out["box_ltrb"] >= 0).all())
    assert out["centerness_logits"].shape == (1, num_points)
    assert out["attentions"].shape == (1, num_points, 4, 7, 7)
    assert out["bases"].shape == (1, 4, 16, 24)  # stride 4
    assert out["points"].shape == (num_points, 2) and out["point_levels"].shape == (num_points,)


def test_box_mask_targets_crop_and_resize_the_mask() -> None:
    masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    masks[0, 4:12, 4:12] = True
    inside = box_mask_targets(masks, torch.tensor([[4.0, 4.0, 12.0, 12.0]]), torch.tensor([0]), 4)
    assert torch.allclose(inside, torch.ones(1, 4, 4))
    whole = box_mask_targets(masks, torch.tensor([[0.0, 0.0, 16.0, 16.0]]), torch.tensor([0]), 4)
    line = torch.tensor([0.0, 1.0, 1.0, 0.0])
    assert torch.allclose(whole[0], line[:, None] * line[None], atol=1e-6)


def test_loss_on_an_image_without_objects_is_finite_and_reaches_the_mask_branches() -> None:
    torch.manual_seed(0)
    model = _tiny_model().train()
    batch = ImageBatch.from_tensors([torch.rand(3, 96, 128) * 255], 32)  # P6 over 1 x 1: GroupNorm needs 2 values
    targets = [Instances.empty((96, 128))]
    losses = model.loss(model(batch, targets), targets)
    assert set(losses) == {"loss_class", "loss_box", "loss_centerness", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert model.bottom.predict.weight.grad is not None and model.head.extra.weight.grad is not None


def test_postprocess_pastes_masks_inside_the_boxes_at_the_original_size() -> None:
    points, _ = level_points([(4, 4)], [8])  # a 32 x 32 padded input, one level
    class_logits = torch.full((1, 16, 1), -10.0)
    class_logits[0, 5] = 10.0  # the point at (12, 12)
    box_ltrb = torch.full((1, 16, 4), 2.0)
    box_ltrb[0, 5] = torch.tensor([8.0, 8.0, 8.0, 4.0])  # box (4, 4, 20, 16)
    outputs = {
        "class_logits": class_logits,
        "box_ltrb": box_ltrb,
        "centerness_logits": torch.full((1, 16), 10.0),
        "attentions": torch.zeros(1, 16, 1, 2, 2),
        "bases": torch.full((1, 1, 8, 8), 5.0),  # on everywhere: the box alone bounds the mask
        "points": points,
    }
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(64, 64)])
    (result,) = BlendMaskPostprocessor(resolution=8, score_threshold=0.3)(outputs, images)
    assert result.image_size == (64, 64) and len(result) == 1
    assert result.scores is not None and 0.0 <= float(result.scores[0]) <= 1.0
    assert torch.allclose(result.boxes[0], torch.tensor([8.0, 8.0, 40.0, 32.0]))
    assert result.masks is not None and int(result.masks[0].sum()) == 32 * 24
    assert bool(result.masks[0, 8:32, 8:40].all())


def test_postprocess_drops_empty_masks() -> None:
    points, _ = level_points([(4, 4)], [8])
    outputs = {
        "class_logits": torch.full((1, 16, 1), 10.0),
        "box_ltrb": torch.full((1, 16, 4), 3.0),
        "centerness_logits": torch.zeros(1, 16),
        "attentions": torch.zeros(1, 16, 1, 2, 2),
        "bases": torch.full((1, 1, 8, 8), -5.0),  # off everywhere
        "points": points,
    }
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 24)], [(50, 37)])
    (result,) = BlendMaskPostprocessor(resolution=8)(outputs, images)
    assert len(result) == 0 and result.image_size == (50, 37)
    assert result.masks is not None and result.masks.shape == (0, 50, 37)


def test_light_model_norms() -> None:
    from torch import nn

    from instseg.methods.blendmask import blendmask_light_mobilenetv3

    model = blendmask_light_mobilenetv3(num_classes=3)
    assert isinstance(model.bottom.refine[0][1], nn.BatchNorm2d)  # one input each: foldable
    assert isinstance(model.head.cls_tower[1], nn.GroupNorm)  # shared by the levels
    assert model.head.extra_outputs == 4 * 14 * 14
    with pytest.raises(ValueError, match="shared by all pyramid levels"):
        blendmask_light_mobilenetv3(num_classes=3, head_norm="bn")


def _discs(size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    specs = [(36, 40, 18), (88, 80, 24), (40, 96, 14)]  # (cy, cx, radius)
    masks = torch.stack([(yy - cy) ** 2 + (xx - cx) ** 2 < r * r for cy, cx, r in specs])
    image = torch.full((3, size, size), 30.0)
    for mask, value in zip(masks, (220.0, 160.0, 250.0), strict=True):
        image[:, mask] = value
    return image, masks


def test_overfits_one_image_of_discs() -> None:
    torch.manual_seed(0)
    model = _tiny_model().train()
    image, masks = _discs()
    targets = [Instances((128, 128), labels=torch.zeros(3, dtype=torch.int64), masks=masks)]
    batch = ImageBatch.from_tensors([image], 32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    for _ in range(100):
        losses = model.loss(model(batch, targets), targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()  # type: ignore[union-attr]
        optimizer.step()
    model.eval()
    with torch.no_grad():
        (pred,) = model.postprocess(model(batch), batch)
    assert pred.masks is not None and pred.scores is not None
    found = pred.masks[pred.scores > 0.3]
    inter = (found[:, None] & masks[None]).flatten(2).sum(2).float()
    union = (found[:, None] | masks[None]).flatten(2).sum(2).float()
    best = (inter / union).amax(0)  # [3]: each disc's best detection
    assert bool((best > 0.7).all()), best
