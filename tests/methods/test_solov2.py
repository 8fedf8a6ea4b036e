"""SOLOv2: grid assignment, losses (empty images, overfitting), hand-made postprocessing, BatchNorm folding."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from instseg.backbones import build_backbone
from instseg.methods.solov2 import (
    LIGHT_NUM_GRIDS,
    SOLOv2,
    SOLOv2Postprocessor,
    assign_grid_cells,
    build_solov2,
    default_scale_ranges,
)
from instseg.methods.solov2.postprocess import point_nms
from instseg.registry import create_model, list_models
from instseg.structures import ImageBatch, Instances

TINY = {
    "fpn_channels": 16,
    "head_channels": 16,
    "head_convs": 2,
    "mask_channels": 8,
    "mask_mid_channels": 8,
    "num_grids": (8, 6, 4, 3, 2),
}


def _tiny(**kwargs: object) -> SOLOv2:
    return build_solov2(build_backbone("resnet18"), 2, 64, 64, **{**TINY, **kwargs})  # type: ignore[arg-type]


def _square(size: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    mask = torch.zeros(size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_builders_are_registered_with_their_options() -> None:
    assert {"solov2_resnet50", "solov2_resnet18", "solov2_light_resnet18"} <= set(list_models("solov2"))
    model = create_model("solov2_light_resnet18", num_classes=3, min_size=448, max_size=512)
    assert isinstance(model, SOLOv2) and model.head.num_grids == list(LIGHT_NUM_GRIDS)
    assert model.rebuild_kwargs["pretrained_backbone"] is False and model.rebuild_kwargs["norm"] == "bn"
    # every architecture default is recorded, so a checkpoint survives later changes of the defaults
    assert model.rebuild_kwargs["mask_norm"] == "bn" and model.rebuild_kwargs["center_sampling"] == 0.2
    rebuilt = create_model("solov2_light_resnet18", **model.rebuild_kwargs)
    assert rebuilt.load_state_dict(model.state_dict()) is not None
    assert isinstance(model.head.cls_tower[0][1], nn.GroupNorm)  # shared by the levels
    assert isinstance(model.mask_branch.fuse[1], nn.BatchNorm2d)  # per level: foldable
    with pytest.raises(ValueError, match="shared by all pyramid levels"):
        create_model("solov2_light_resnet18", num_classes=3, head_norm="bn")
    r18 = create_model("solov2_resnet18", num_classes=3, min_size=128, max_size=128)
    assert isinstance(r18.head.cls_tower[0][1], nn.GroupNorm) and len(r18.head.cls_tower) == 4


def test_default_scale_ranges_follow_the_input_size() -> None:
    ranges = default_scale_ranges(400, 666)
    assert ranges[0] == (0.0, 48.0) and ranges[1] == (24.0, 96.0) and ranges[-1] == (192.0, math.inf)
    assert default_scale_ranges(None, 1000)[1] == (36.0, 144.0)  # short side ~0.6 x the long-side cap


def test_assignment_of_a_hand_made_object() -> None:
    # a 16 x 16 square in a 64 x 64 image: sqrt(wh) = 16 fits level 0 only (level 1 starts at 20)
    target = Instances((64, 64), labels=torch.tensor([1]), masks=_square((64, 64), 20, 36, 36, 52)[None])
    labels, gt_index = assign_grid_cells(target, (64, 64), (8, 4), ((0.0, 24.0), (20.0, math.inf)), 0.2)
    assert labels.shape == gt_index.shape == (64 + 16,)
    # centre of mass (28, 44) -> cell (3, 5) of the 8 x 8 grid; the centre region (+-1.6 px) stays inside it
    assert (labels >= 0).nonzero().flatten().tolist() == [3 * 8 + 5]
    assert labels[3 * 8 + 5] == 1 and gt_index[3 * 8 + 5] == 0

    # a 40 x 40 square (sqrt(wh) = 40): level 1 only; its centre region (+-4 px around (32, 32)) spans the
    # 2 x 2 cells in the middle of the 4 x 4 grid (cells of 16 px: 28 -> row 1, 36 -> row 2)
    big = Instances((64, 64), labels=torch.tensor([0]), masks=_square((64, 64), 12, 52, 12, 52)[None])
    labels, gt_index = assign_grid_cells(big, (64, 64), (8, 4), ((0.0, 24.0), (20.0, math.inf)), 0.2)
    assert (gt_index >= 0).nonzero().flatten().tolist() == [64 + 1 * 4 + 1, 64 + 1 * 4 + 2, 64 + 2 * 4 + 1, 64 + 10]
    assert (labels[gt_index >= 0] == 0).all()

    # a wide centre region is cut to the 3 x 3 cells around the centre cell; small objects win shared cells
    both = Instances(
        (64, 64),
        labels=torch.tensor([0, 1]),
        masks=torch.stack([_square((64, 64), 0, 64, 0, 64), _square((64, 64), 28, 36, 28, 36)]),
    )
    labels, gt_index = assign_grid_cells(both, (64, 64), (8,), ((0.0, math.inf),), 1.0)
    assert int((gt_index == 0).sum()) == 9 - 4 and int((gt_index == 1).sum()) == 4
    assert assign_grid_cells(Instances.empty((64, 64)), (64, 64), (8,), ((0.0, 1e9),))[0].eq(-1).all()


def test_losses_with_only_empty_images_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = _tiny()
    batch = ImageBatch.from_tensors([torch.rand(3, 64, 64) * 255], 32)
    outputs = model(batch)
    assert outputs["cls_logits"].shape == (1, 64 + 36 + 16 + 9 + 4, 2)
    assert outputs["kernels"].shape == (1, 129, 8) and outputs["mask_features"].shape == (1, 8, 16, 16)
    losses = model.loss(outputs, [Instances.empty((64, 64))])
    assert set(losses) == {"loss_cls", "loss_mask"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_loss_decreases_when_overfitting_one_image() -> None:
    torch.manual_seed(0)
    model = _tiny()
    image = torch.full((3, 64, 64), 30.0)
    masks = torch.stack([_square((64, 64), 6, 26, 8, 30), _square((64, 64), 34, 60, 30, 58)])
    image[:, masks[0]] = 220.0
    image[:, masks[1]] = 140.0
    target = Instances((64, 64), labels=torch.tensor([0, 1]), masks=masks)
    batch = ImageBatch.from_tensors([image], 32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    model.train()
    for _ in range(40):
        losses = model.loss(model(batch), [target])
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()  # type: ignore[union-attr]
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    assert history[-1]["loss_mask"] < 0.5 * history[0]["loss_mask"], history[::10]
    assert history[-1]["loss_cls"] < history[0]["loss_cls"], history[::10]


def test_postprocess_of_hand_made_outputs() -> None:
    # two mask-feature channels are two squares; two cells of a 2 x 2 grid carry the matching kernels
    features = torch.full((1, 2, 8, 8), -8.0)
    features[0, 0, 0:4, 0:4] = 8.0
    features[0, 1, 4:8, 2:8] = 8.0
    kernels = torch.zeros(1, 4, 2)
    kernels[0, 0] = torch.tensor([1.0, 0.0])
    kernels[0, 3] = torch.tensor([0.0, 1.0])
    logits = torch.full((1, 4, 3), -10.0)
    logits[0, 0, 2] = 2.0  # class 2, p = 0.88
    logits[0, 3, 0] = 0.0  # class 0, p = 0.5
    post = SOLOv2Postprocessor([2], mask_stride=4, score_threshold=0.1)
    # padded 32 x 32 input, image 24 x 32 inside it, originally 48 x 64 (resized by 0.5)
    images = ImageBatch(torch.zeros(1, 3, 32, 32), [(24, 32)], [(48, 64)])
    (pred,) = post({"cls_logits": logits, "kernels": kernels, "mask_features": features}, images)
    assert pred.image_size == (48, 64) and len(pred) == 2
    assert pred.labels.tolist() == [2, 0] and pred.labels.dtype == torch.int64
    assert pred.scores is not None and pred.masks is not None
    assert torch.allclose(pred.scores, torch.tensor([torch.sigmoid(torch.tensor(2.0)).item(), 0.5]), atol=1e-3)
    expected_a = torch.zeros(48, 64, dtype=torch.bool)
    expected_a[0:32, 0:32] = True  # 16 px at 1/4 scale -> 16 padded-input px -> 32 original px
    expected_b = torch.zeros(48, 64, dtype=torch.bool)
    expected_b[32:48, 16:64] = True  # the part below the image (rows 24..32 of the input) is cropped away
    assert (pred.masks[0] ^ expected_a).sum() <= 2 * 32 + 2 and (pred.masks[1] ^ expected_b).sum() <= 2 * 48 + 2
    assert pred.boxes[0].tolist() == pytest.approx([0, 0, 32, 32], abs=1.5)


def test_point_nms_keeps_local_maxima_only() -> None:
    scores = torch.tensor([[0.9], [0.8], [0.1], [0.7]])  # one 2 x 2 grid, one class
    assert point_nms(scores, [2]).flatten().tolist() == pytest.approx([0.9, 0.0, 0.0, 0.0])


def test_zero_detections_give_empty_instances_of_the_original_size() -> None:
    model = _tiny().eval()
    with torch.no_grad():
        model.head.cls_pred.bias.fill_(-30.0)
        batch = model.preprocess([torch.rand(3, 50, 70) * 255, torch.rand(3, 64, 40) * 255])
        predictions = model.postprocess(model(batch), batch)
    assert [p.image_size for p in predictions] == [(50, 70), (64, 40)]
    for pred in predictions:
        assert len(pred) == 0 and pred.masks is not None and pred.masks.shape == (0, *pred.image_size)
        assert pred.scores is not None and pred.scores.shape == (0,) and pred.boxes.shape == (0, 4)
