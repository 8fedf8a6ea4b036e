"""CenterMask: the spatial attention mask head, the mask head's training regions, the model's outputs."""

from __future__ import annotations

import pytest
import torch

import instseg
from instseg import ImageBatch, Instances
from instseg.methods.centermask.head import SpatialAttentionMaskHead
from instseg.methods.centermask.regions import training_regions


def test_attention_weights_every_channel_by_one_map() -> None:
    torch.manual_seed(0)
    head = SpatialAttentionMaskHead(in_channels=4, num_classes=2, channels=6, num_convs=2)
    x = torch.randn(3, 4, 7, 7)
    assert head(x).shape == (3, 2, 14, 14)
    features = head.convs(x)
    weights = head.attention(torch.cat([features.mean(1, keepdim=True), features.amax(1, keepdim=True)], 1))
    expected = head.logits(head.upsample(features * weights.sigmoid()))
    torch.testing.assert_close(head(x), expected)
    with torch.no_grad():  # an attention that shuts every pixel leaves only the biases
        head.attention.bias.fill_(-1e4)
    flat = head(x)
    assert torch.allclose(flat, flat[:, :, :1, :1].expand_as(flat))


def _target() -> Instances:
    masks = torch.zeros(3, 64, 64, dtype=torch.bool)
    masks[0, 0:16, 0:16] = True
    masks[1, 30:50, 30:50] = True
    # object 2 lost its pixels (cropped away by augmentation): an empty box, never a training region
    return Instances((64, 64), labels=torch.tensor([0, 0, 0]), masks=masks)


def test_training_regions_are_the_objects_and_the_good_predicted_boxes() -> None:
    target = _target()
    points = torch.tensor([[8.0, 8.0], [40.0, 40.0], [44.0, 44.0], [60.0, 4.0]])
    ltrb = torch.tensor(
        [
            [8.0, 8.0, 8.0, 8.0],  # the box of object 0 exactly
            [10.0, 10.0, 10.0, 10.0],  # object 1 exactly
            [1.0, 1.0, 1.0, 1.0],  # a tiny box inside object 1: IoU < 0.5, left out
            [4.0, 4.0, 4.0, 4.0],  # a background point
        ]
    )
    matched = torch.tensor([0, 1, 1, -1])
    regions, owners = training_regions(points, ltrb, matched, target, max_regions=10)
    assert owners[:2].tolist() == [0, 1]  # the objects' own boxes first
    predicted = sorted(zip(owners[2:].tolist(), regions[2:].tolist(), strict=True))  # then a shuffled sample
    assert predicted == [(0, [0.0, 0.0, 16.0, 16.0]), (1, [30.0, 30.0, 50.0, 50.0])]
    capped, capped_owners = training_regions(points, ltrb, matched, target, max_regions=2)
    assert len(capped) == 2 and sorted(capped_owners.tolist()) == [0, 1]  # the objects come first


def test_model_outputs_and_loss_weights() -> None:
    torch.manual_seed(0)
    model = instseg.create_model("centermask_resnet18_fpn", num_classes=2, min_size=128, max_size=128, head_channels=32)
    images = ImageBatch.from_tensors([torch.rand(3, 96, 128) * 255, torch.rand(3, 128, 96) * 255], 32, 0.0)
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert int(out["num_detections"].sum()) == len(out["boxes"]) == len(out["mask_probs"])
    assert out["mask_probs"].shape[1:] == (1, 28, 28) and ((out["mask_probs"] >= 0) & (out["mask_probs"] <= 1)).all()
    assert len(model.postprocess(out, images)) == 2
    with pytest.raises(ValueError, match="unknown CenterMask loss weights"):
        instseg.create_model("centermask_resnet18_fpn", num_classes=2, loss_weights={"loss_maks": 2.0})
    weighted = instseg.create_model("centermask_resnet18_fpn", num_classes=2, loss_weights={"loss_mask": 3.0})
    raw = {"loss_mask": torch.tensor(2.0), "loss_box": torch.tensor(1.0)}
    assert {k: float(v) for k, v in weighted.loss(raw, []).items()} == {"loss_mask": 6.0, "loss_box": 1.0}
