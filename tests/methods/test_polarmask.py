"""PolarMask: ray targets and polygon boxes by hand, losses with and without objects, overfitting, masks in boxes."""

from __future__ import annotations

import torch
from dense_testdata import batch_with_an_empty_image, discs

from instseg.methods.polarmask import PolarMask, point_rays, polygon_ltrb
from instseg.registry import create_model
from instseg.structures import ImageBatch, Instances

RANGES = ((0, 32), (32, 64), (64, 128), (128, float("inf")))


def _small() -> PolarMask:
    return create_model(  # type: ignore[return-value]
        "polarmask_resnet18", num_classes=1, min_size=None, max_size=None, norm="bn", fpn_channels=32,
        head_channels=32, size_ranges=RANGES, n_rays=16,
    )  # fmt: skip


def test_point_rays_are_exact_at_the_level_points() -> None:
    label_map = torch.zeros(32, 32, dtype=torch.int64)
    label_map[4:20, 4:20] = 3  # a 16 x 16 square, pixels 4..19
    rays, labels = point_rays(label_map, [(4, 4), (2, 2)], [8, 16], 4)
    assert rays.shape == (20, 4) and labels.shape == (20,)
    # the level-0 point (12, 12) (index 5) is on the square: it leaves it at pixel edges 19.5 and 3.5
    assert labels[5] == 3 and rays[5].tolist() == [7.5, 7.5, 8.5, 8.5]  # +x, +y, -x, -y
    # the level-1 point (8, 8) (index 16): 11.5 to the right and bottom edges, 4.5 to the left and top ones
    assert labels[16] == 3 and rays[16].tolist() == [11.5, 11.5, 4.5, 4.5]
    assert (rays[labels == 0] == 0).all() and int((labels == 3).sum()) == 5


def test_polygon_box_distances_by_hand() -> None:
    rays = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])  # angles 0, 90, 180, 270 degrees
    assert torch.allclose(polygon_ltrb(rays), torch.tensor([[3.0, 4.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]]), atol=1e-6)


def test_losses_with_an_empty_image_and_with_no_object_at_all() -> None:
    torch.manual_seed(0)
    model = _small()
    batch, targets = batch_with_an_empty_image()
    outputs = model(batch, targets)
    assert outputs["rays"].shape == (2, outputs["points"].shape[0], 16) and (outputs["rays"] > 0).all()
    losses = model.loss(outputs, targets)
    assert set(losses) == {"loss_class", "loss_box", "loss_centerness", "loss_rays"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_rays"] > 0
    empty = model.loss(model(ImageBatch.from_tensors([torch.zeros(3, 96, 96)], 32)), [Instances.empty((96, 96))])
    assert empty["loss_rays"].item() == 0.0
    sum(empty.values()).backward()  # type: ignore[union-attr]


def test_overfits_four_images_and_keeps_masks_in_their_boxes() -> None:
    torch.manual_seed(0)
    model = _small()
    items = discs(4, seed=1)
    batch = ImageBatch.from_tensors([image for image, _ in items], 32)
    targets = [target for _, target in items]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    model.train()
    for _ in range(120):
        losses = model.loss(model(batch), targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()  # type: ignore[union-attr]
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model.postprocess(model(batch), batch)
    for pred, truth in zip(predictions, targets, strict=True):
        top = pred[: len(truth)]  # the best-scored detections, one per object
        p, t = top.masks.flatten(1).float(), truth.masks.flatten(1).float()  # type: ignore[union-attr]
        inter = p @ t.T
        iou = inter / (p.sum(1)[:, None] + t.sum(1)[None] - inter).clamp(min=1)
        assert iou.max(0).values.min() > 0.75, iou.max(0).values
        full = pred.masks
        ys, xs = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
        for mask, (x0, y0, x1, y1) in zip(full, pred.boxes.tolist(), strict=True):  # type: ignore[arg-type]
            inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
            assert not (mask & ~inside).any()
