"""Watershed method: forward/backward, empty images, sizes, seeded watershed on hand-made maps, a learning check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.methods.watershed import WatershedPostprocessor, WatershedSegmenter
from instseg.methods.watershed.builders import watershed_resnet18, watershed_unet
from instseg.ops.instance_maps import normalized_distance_map
from instseg.registry import create_model, list_models
from instseg.structures import ImageBatch, Instances


def _discs(num_images: int, size: int = 64, seed: int = 0) -> list[tuple[torch.Tensor, Instances]]:
    """Bright discs (radius 5..9, may touch or overlap) on a noisy dark background, like fluorescent nuclei."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    items = []
    for _ in range(num_images):
        label_map = np.zeros((size, size), np.int64)
        for k in range(1, int(rng.integers(3, 7)) + 1):
            r = rng.uniform(5, 9)
            cy, cx = rng.uniform(r, size - r, 2)
            label_map[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
        masks = label_map[None] == np.arange(1, label_map.max() + 1)[:, None, None]
        masks = masks[masks.reshape(len(masks), -1).sum(1) >= 20]
        image = np.clip(40 + 150 * (label_map > 0) + rng.normal(0, 15, label_map.shape), 0, 255).astype(np.float32)
        items.append(
            (torch.from_numpy(image)[None].repeat(3, 1, 1), Instances((size, size), masks=torch.from_numpy(masks)))
        )
    return items


def _f1_at_half(predictions: list[Instances], truths: list[Instances]) -> float:
    """F1 at IoU > 0.5 (matches at IoU > 0.5 are one-to-one, so counting them is the optimal matching)."""
    tp = fp = fn = 0
    for pred, truth in zip(predictions, truths, strict=True):
        assert pred.masks is not None and truth.masks is not None
        p, t = pred.masks.flatten(1).float(), truth.masks.flatten(1).float()
        inter = p @ t.T
        iou = inter / (p.sum(1)[:, None] + t.sum(1)[None] - inter).clamp(min=1)
        matched = int((iou > 0.5).sum())
        tp, fp, fn = tp + matched, fp + len(pred) - matched, fn + len(truth) - matched
    return 2 * tp / max(1, 2 * tp + fp + fn)


def _tiny(**kwargs: object) -> WatershedSegmenter:
    return watershed_unet(base_channels=4, depth=2, **kwargs)  # type: ignore[arg-type]


def test_builders_are_registered() -> None:
    assert {"watershed_unet", "watershed_resnet18", "watershed_resnet34"} <= set(list_models("watershed"))
    model = create_model("watershed_unet", base_channels=4, depth=2, num_classes=1, min_size=64, max_size=96)
    assert isinstance(model, WatershedSegmenter) and model.min_size == 64 and model.max_size == 96


@pytest.mark.parametrize("builder", [_tiny, watershed_resnet18])
def test_forward_backward_with_an_empty_image(builder) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = builder()
    ((image, target),) = _discs(1, size=48)
    batch = ImageBatch.from_tensors([image, torch.full((3, 40, 30), 60.0)], 32)
    targets = [target, Instances.empty((40, 30))]
    outputs = model(model.normalize(batch), targets)
    assert outputs["fg_logits"].shape == outputs["distance"].shape == (2, 1, 64, 64)
    losses = model.loss(outputs, targets)
    assert set(losses) == {"loss_fg", "loss_distance"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_only_empty_images_give_finite_losses() -> None:
    model = _tiny()
    batch = ImageBatch.from_tensors([torch.zeros(3, 32, 32)], 32)
    losses = model.loss(model(model.normalize(batch)), [Instances.empty((32, 32))])
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def test_multi_class_outputs_and_loss() -> None:
    model = _tiny(num_classes=3)
    ((image, target),) = _discs(1, size=32)
    target = Instances(target.image_size, masks=target.masks, labels=torch.arange(len(target)) % 3)
    batch = ImageBatch.from_tensors([image], 32)
    outputs = model(model.normalize(batch))
    assert outputs["class_logits"].shape == (1, 3, 32, 32)
    losses = model.loss(outputs, [target])
    assert "loss_class" in losses and torch.isfinite(losses["loss_class"])
    model.eval()
    with torch.no_grad():
        (pred,) = model.postprocess(model(model.normalize(batch)), batch)
    assert pred.labels.dtype == torch.int64 and ((pred.labels >= 0) & (pred.labels < 3)).all()


@pytest.mark.parametrize(("min_size", "max_size"), [(None, None), (64, 80)])
def test_predictions_come_back_at_the_original_size(min_size: int | None, max_size: int | None) -> None:
    model = _tiny(min_size=min_size, max_size=max_size).eval()
    image = (np.random.default_rng(0).random((100, 130, 3)) * 255).astype(np.uint8)
    batch = model.preprocess([torch.from_numpy(image).permute(2, 0, 1)])
    with torch.no_grad():
        (pred,) = model.postprocess(model(batch), batch)
    assert pred.image_size == (100, 130)
    assert pred.masks is not None and pred.masks.shape[1:] == (100, 130)
    assert pred.scores is not None and len(pred.scores) == len(pred)


def _touching_discs_maps(size: tuple[int, int] = (60, 90)) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    yy, xx = np.mgrid[: size[0], : size[1]]
    label_map = np.zeros(size, np.int64)
    label_map[(yy - 30) ** 2 + (xx - 30) ** 2 < 15**2] = 1
    label_map[(yy - 30) ** 2 + (xx - 57) ** 2 < 13**2] = 2  # overlaps disc 1: one connected blob
    label_map[(yy - 8) ** 2 + (xx - 80) ** 2 < 2**2] = 3  # tiny speck, below min_area
    fg_logits = torch.from_numpy(np.where(label_map > 0, 4.0, -4.0)).float()[None, None]
    distance = torch.from_numpy(normalized_distance_map(label_map))[None, None]
    return fg_logits, distance, label_map


@pytest.mark.parametrize("seed_method", ["threshold", "peaks"])
def test_watershed_splits_two_touching_discs(seed_method: str) -> None:
    fg_logits, distance, label_map = _touching_discs_maps()
    assert (label_map[30, 30:58] > 0).all()  # the two discs form one foreground blob
    batch = ImageBatch(torch.zeros(1, 3, 60, 90), [(60, 90)], [(60, 90)])
    post = WatershedPostprocessor(seed_method=seed_method, min_area=20)
    (pred,) = post({"fg_logits": fg_logits, "distance": distance}, batch)
    assert len(pred) == 2
    assert pred.masks is not None and pred.scores is not None
    truth = torch.from_numpy(label_map)
    for k in (1, 2):
        iou = [(m & (truth == k)).sum() / (m | (truth == k)).sum() for m in pred.masks]
        assert max(iou) > 0.9
    assert (pred.scores > 0.9).all()


def test_postprocess_maps_a_resized_prediction_to_the_original_size() -> None:
    fg_logits, distance, _ = _touching_discs_maps((60, 90))
    padded = torch.nn.functional.pad
    outputs = {"fg_logits": padded(fg_logits, (0, 6, 0, 4), value=-9.0), "distance": padded(distance, (0, 6, 0, 4))}
    batch = ImageBatch(torch.zeros(1, 3, 64, 96), [(60, 90)], [(120, 180)])  # the model saw a half-size image
    (pred,) = WatershedPostprocessor(min_area=80)(outputs, batch)  # min_area counts original pixels
    assert len(pred) == 2 and pred.image_size == (120, 180)
    assert pred.masks is not None and pred.masks.shape == (2, 120, 180)


def test_postprocess_of_an_empty_prediction() -> None:
    outputs = {"fg_logits": torch.full((1, 1, 32, 32), -5.0), "distance": torch.zeros(1, 1, 32, 32)}
    (pred,) = WatershedPostprocessor()(outputs, ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(32, 32)]))
    assert len(pred) == 0 and pred.masks is not None and pred.masks.shape == (0, 32, 32)


def test_unseeded_foreground_still_becomes_an_object() -> None:
    fg = np.zeros((30, 30), np.float32)
    fg[5:15, 5:15] = 0.9
    segment = WatershedPostprocessor(seed_threshold=0.5).segment(fg, np.zeros_like(fg))  # no seed anywhere
    assert len(np.unique(segment)) == 2 and (segment[5:15, 5:15] > 0).all()


def test_bad_seed_method_raises() -> None:
    with pytest.raises(ValueError, match="seed_method"):
        WatershedPostprocessor(seed_method="maxima")


@pytest.mark.slow
def test_learns_synthetic_discs() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = watershed_unet(base_channels=8, depth=3)
    train, test = _discs(400, seed=1), _discs(8, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for step in range(100):
        items = train[step * 4 : step * 4 + 4]
        batch = ImageBatch.from_tensors([image for image, _ in items], 32)
        losses = model.loss(model(model.normalize(batch)), [target for _, target in items])
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    batch = ImageBatch.from_tensors([image for image, _ in test], 32)
    with torch.no_grad():
        predictions = model.postprocess(model(model.normalize(batch)), batch)
    assert _f1_at_half(predictions, [target for _, target in test]) > 0.6
