"""Watershed method: forward/backward, empty images, sizes, seeded watershed on hand-made maps, a learning check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dense_testdata import batch_with_an_empty_image, discs, train_and_score

from instseg.methods.watershed import WatershedPostprocessor, WatershedSegmenter
from instseg.methods.watershed.builders import watershed_resnet18, watershed_unet
from instseg.ops.instance_maps import normalized_distance_map
from instseg.registry import create_model, list_models
from instseg.structures import ImageBatch, Instances


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
    batch, targets = batch_with_an_empty_image()
    outputs = model(batch, targets)
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
    losses = model.loss(model(batch), [Instances.empty((32, 32))])
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def test_multi_class_outputs_and_loss() -> None:
    model = _tiny(num_classes=3)
    ((image, target),) = discs(1, size=32)
    target = Instances(target.image_size, masks=target.masks, labels=torch.arange(len(target)) % 3)
    batch = ImageBatch.from_tensors([image], 32)
    outputs = model(batch)
    assert outputs["class_logits"].shape == (1, 3, 32, 32)
    losses = model.loss(outputs, [target])
    assert "loss_class" in losses and torch.isfinite(losses["loss_class"])
    model.eval()
    with torch.no_grad():
        (pred,) = model.postprocess(model(batch), batch)
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
    assert train_and_score(model) > 0.6
