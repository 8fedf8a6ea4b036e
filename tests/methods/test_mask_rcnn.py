"""Mask R-CNN: torchvision weight mapping, the three-step contract, settings for crowded images, predict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn

import instseg
from instseg import ImageBatch, Instances
from instseg.methods.mask_rcnn import COCO_CATEGORY_IDS, CROWDED, MaskRCNN, load_torchvision_weights
from instseg.methods.mask_rcnn import weights as mask_rcnn_weights
from instseg.methods.segmenter import IMAGENET_MEAN, IMAGENET_STD

TINY = {"num_classes": 3, "min_size": 96, "max_size": 128}
# narrow heads and few proposals keep each test at a second or two of CPU time
FAST = {
    **TINY,
    "fpn_channels": 64,
    "box_head_dim": 128,
    "mask_head_channels": 32,
    "box_batch_size_per_image": 64,
    "rpn_post_nms_top_n_train": 200,
    "rpn_pre_nms_top_n_test": 200,
    "rpn_post_nms_top_n_test": 100,
}


def _create(name: str, **kwargs: Any) -> MaskRCNN:
    model = instseg.create_model(name, **kwargs)
    assert isinstance(model, MaskRCNN)
    return model


def _torchvision_r50(num_classes: int = 91, **kwargs: object) -> torch.nn.Module:
    """Randomly initialised torchvision Mask R-CNN R50-FPN that normalises pixels exactly as instseg does."""
    torch.manual_seed(0)
    return maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        image_mean=list(IMAGENET_MEAN),  # 0..255 scale so both models compute (x - mean) / std identically
        image_std=list(IMAGENET_STD),
        **kwargs,
    )


def _batch(model: MaskRCNN) -> tuple[ImageBatch, list[Instances]]:
    """Two images: one with two objects (labels 0 and 2), one with none."""
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 96, 128, generator=g) * 255, torch.rand(3, 128, 96, generator=g) * 255]
    masks = torch.zeros(2, 96, 128, dtype=torch.bool)
    masks[0, 10:40, 20:60] = True
    masks[1, 50:90, 70:120] = True
    targets = [Instances((96, 128), labels=torch.tensor([0, 2]), masks=masks), Instances.empty((128, 96))]
    return ImageBatch.from_tensors(images, 32, 0.0), targets


def test_torchvision_weights_give_identical_outputs() -> None:
    """torchvision's state dict mapped onto instseg's model gives the same detections on the same image."""
    settings = {"min_size": 160, "max_size": 224, "box_score_thresh": 0.0, "box_detections_per_img": 20}
    settings |= {"rpn_pre_nms_top_n_test": 200, "rpn_post_nms_top_n_test": 100}
    tv = _torchvision_r50(**settings).eval()
    ours = _create("mask_rcnn_resnet50_fpn", num_classes=90, **settings)
    assert load_torchvision_weights(ours, tv.state_dict()) == []
    ours.eval()
    image = np.random.default_rng(0).integers(0, 256, (160, 192, 3), dtype=np.uint8)  # no resize in either model
    with torch.no_grad():
        expected = tv([torch.from_numpy(image).permute(2, 0, 1).float()])[0]
    got = ours.predict(image)
    assert len(got) == len(expected["boxes"]) == 20
    torch.testing.assert_close(got.boxes, expected["boxes"], rtol=0, atol=1e-4)
    torch.testing.assert_close(got.scores, expected["scores"], rtol=0, atol=1e-6)
    assert torch.equal(got.labels + 1, expected["labels"])
    assert got.masks is not None
    assert torch.equal(got.masks, expected["masks"][:, 0] > 0.5)


def test_coco_weights_pick_80_class_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """weights="coco" with 80 classes keeps background + the 80 real COCO rows; other counts re-init predictors."""
    tv_state = _torchvision_r50().state_dict()
    monkeypatch.setattr(mask_rcnn_weights, "coco_state_dict", lambda progress=True: tv_state)  # never download
    model = _create("mask_rcnn_resnet50_fpn", weights="coco", num_classes=80, min_size=64, max_size=64)
    rows = torch.tensor([0, *COCO_CATEGORY_IDS])
    cls = model.roi_heads.box_predictor.cls_score
    assert torch.equal(cls.weight, tv_state["roi_heads.box_predictor.cls_score.weight"][rows])
    mask_logits = model.roi_heads.mask_predictor.mask_fcn_logits
    assert torch.equal(mask_logits.bias, tv_state["roi_heads.mask_predictor.mask_fcn_logits.bias"][rows])
    assert torch.equal(model.backbone.conv1.weight, tv_state["backbone.body.conv1.weight"])
    assert torch.equal(model.neck.fpn.layer_blocks[0][0].weight, tv_state["backbone.fpn.layer_blocks.0.0.weight"])
    # COCO-trained backbones keep their BatchNorm statistics frozen and their stem and first stage fixed
    assert type(model.backbone.bn1).__name__ == "FrozenBatchNorm2d"
    assert not model.backbone.layer1[0].conv1.weight.requires_grad
    # a checkpoint of this model rebuilds offline: same architecture, nothing fetched
    monkeypatch.setattr(mask_rcnn_weights, "coco_state_dict", lambda progress=True: pytest.fail("downloads"))
    rebuilt = _create("mask_rcnn_resnet50_fpn", **model.rebuild_kwargs)
    rebuilt.load_state_dict(model.state_dict())  # strict
    assert type(rebuilt.backbone.bn1).__name__ == "FrozenBatchNorm2d"
    assert not rebuilt.backbone.layer1[0].conv1.weight.requires_grad
    monkeypatch.setattr(mask_rcnn_weights, "coco_state_dict", lambda progress=True: tv_state)
    fresh = _create("mask_rcnn_resnet50_fpn", weights="coco", num_classes=5, min_size=64, max_size=64)
    assert fresh.roi_heads.box_predictor.cls_score.weight.shape == (6, 1024)
    assert torch.equal(fresh.backbone.conv1.weight, tv_state["backbone.body.conv1.weight"])


def test_mismatched_checkpoint_is_rejected() -> None:
    model = _create("mask_rcnn_resnet18_fpn", **FAST)
    with pytest.raises(ValueError, match="does not fit"):
        load_torchvision_weights(model, _torchvision_r50().state_dict())


def test_training_outputs_are_weighted_losses() -> None:
    torch.manual_seed(0)
    model = _create("mask_rcnn_resnet18_fpn", loss_weights={"loss_mask": 2.0}, **FAST)
    model.train()
    batch, targets = _batch(model)
    outputs = model(batch, targets)
    assert set(outputs) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
    losses = model.loss(outputs, targets)
    torch.testing.assert_close(losses["loss_mask"], 2 * outputs["loss_mask"])
    with pytest.raises(ValueError, match="targets in training mode"):
        model(batch)


def test_bad_targets_raise() -> None:
    model = _create("mask_rcnn_resnet18_fpn", **FAST).train()
    batch, targets = _batch(model)
    bad = Instances((96, 128), labels=torch.tensor([0, 3]), masks=targets[0].masks)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        model(batch, [bad, targets[1]])
    with pytest.raises(ValueError, match="has no masks"):
        model(batch, [Instances((96, 128), boxes=targets[0].boxes), targets[1]])


def test_empty_mask_targets_are_dropped() -> None:
    """An object whose mask was cropped away (zero-size box) must not make the losses infinite."""
    model = _create("mask_rcnn_resnet18_fpn", **FAST).train()
    batch, targets = _batch(model)
    masks = torch.cat([targets[0].masks, torch.zeros(1, 96, 128, dtype=torch.bool)])  # type: ignore[list-item]
    with_empty = Instances((96, 128), labels=torch.tensor([0, 2, 1]), masks=masks)
    losses = model.loss(model(batch, [with_empty, targets[1]]), targets)
    assert all(torch.isfinite(v) for v in losses.values())


def test_eval_outputs_and_postprocess_at_original_size() -> None:
    torch.manual_seed(0)
    model = _create(
        "mask_rcnn_resnet18_fpn", box_score_thresh=0.0, box_detections_per_img=8, mask_roi_size=28, **FAST
    ).eval()
    images = [torch.rand(3, 60, 80) * 255, torch.rand(3, 200, 150) * 255]
    batch = model.preprocess(images)
    assert batch.original_sizes == [(60, 80), (200, 150)]
    with torch.no_grad():
        outputs = model(batch)
    d = outputs["boxes"].shape[0]
    assert outputs["mask_probs"].shape == (d, 1, 56, 56)  # mask RoI 28 -> 56-pixel masks
    assert int(outputs["num_detections"].sum()) == d
    results = model.postprocess(outputs, batch)
    for inst, (h, w), n in zip(results, [(60, 80), (200, 150)], outputs["num_detections"].tolist(), strict=True):
        assert inst.image_size == (h, w) and len(inst) == n
        assert inst.masks is not None and inst.masks.shape == (n, h, w) and inst.masks.dtype == torch.bool
        assert (inst.boxes[:, 0::2] <= w).all() and (inst.boxes[:, 1::2] <= h).all() and (inst.boxes >= 0).all()


def test_crowded_settings_allow_hundreds_of_detections() -> None:
    torch.manual_seed(0)
    narrow = {"fpn_channels": 16, "box_head_dim": 32, "mask_head_channels": 8, "box_score_thresh": 0.0}
    settings = {**FAST, "min_size": 256, "max_size": 256, **CROWDED, **narrow}
    model = _create("mask_rcnn_resnet18_fpn", **settings).eval()
    assert model.roi_heads.detections_per_img == 500
    with torch.no_grad():
        batch = model.preprocess([torch.rand(3, 256, 256) * 255])
        outputs = model(batch)
    assert 100 < int(outputs["num_detections"][0]) <= 500
    assert len(model.postprocess(outputs, batch)[0]) == int(outputs["num_detections"][0])


def test_predict_numpy_image() -> None:
    model = _create("mask_rcnn_resnet18_fpn", **FAST)
    model.train()
    grey = np.random.default_rng(0).integers(0, 256, (70, 90), dtype=np.uint8)
    result = model.predict(grey)
    assert model.training  # predict restores the mode
    assert result.image_size == (70, 90) and result.scores is not None
    assert result.masks is not None and result.masks.shape[1:] == (70, 90)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="anchor_sizes needs one entry per pyramid level"):
        _create("mask_rcnn_resnet18_fpn", anchor_sizes=(32, 64), **TINY)
    with pytest.raises(ValueError, match="weights must be None or 'coco'"):
        _create("mask_rcnn_resnet50_fpn", weights="imagenet", **TINY)


def test_batch_without_any_object_trains() -> None:
    """All-background batches give finite losses and a gradient for every parameter (so DDP needs no
    find_unused_parameters)."""
    model = _create("mask_rcnn_resnet18_fpn", **FAST).train()
    batch = ImageBatch.from_tensors([torch.rand(3, 96, 128) * 255, torch.rand(3, 64, 64) * 255])
    targets = [Instances.empty((96, 128)), Instances.empty((64, 64))]
    losses = model.loss(model(batch, targets), targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_fpn_norm_option() -> None:
    model = _create("mask_rcnn_resnet18_fpn", fpn_norm="gn", norm="gn", **FAST)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.neck.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
