"""Star-convex model: forward/backward, empty images, sizes, polygon NMS on hand-made maps, export parity with
the torch-free runtime, a learning check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from dense_testdata import batch_with_an_empty_image, discs, train_and_score

from instseg.methods.star_convex import StarConvexPostprocessor, StarConvexSegmenter
from instseg.methods.star_convex.builders import star_convex_resnet18, star_convex_unet
from instseg.methods.star_convex.postprocess import polygon_nms
from instseg.ops.instance_maps import normalized_distance_map
from instseg.ops.polar_rays import ray_distances
from instseg.registry import create_model, list_models
from instseg.structures import ImageBatch, Instances


def _tiny(**kwargs: object) -> StarConvexSegmenter:
    return star_convex_unet(base_channels=4, depth=2, **kwargs)  # type: ignore[arg-type]


def test_builders_are_registered() -> None:
    assert {"star_convex_unet", "star_convex_resnet18"} <= set(list_models("star_convex"))
    model = create_model("star_convex_unet", base_channels=4, depth=2, n_rays=16, min_size=64, max_size=96)
    assert isinstance(model, StarConvexSegmenter) and model.min_size == 64 and model.max_size == 96
    assert model.head.n_rays == 16 and model.rebuild_kwargs["n_rays"] == 16


@pytest.mark.parametrize("builder", [_tiny, star_convex_resnet18])
def test_forward_backward_with_an_empty_image(builder) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = builder()
    batch, targets = batch_with_an_empty_image()
    outputs = model(batch, targets)
    assert outputs["prob_logits"].shape == (2, 1, 64, 64) and outputs["distances"].shape == (2, 32, 64, 64)
    assert (outputs["distances"] >= 0).all()
    losses = model.loss(outputs, targets)
    assert set(losses) == {"loss_prob", "loss_distance"}
    total = sum(losses.values())
    assert torch.isfinite(total) and losses["loss_distance"] > 0
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_only_empty_images_give_finite_losses() -> None:
    model = _tiny()
    batch = ImageBatch.from_tensors([torch.zeros(3, 32, 32)], 32)
    losses = model.loss(model(batch), [Instances.empty((32, 32))])
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_distance"] == 0
    sum(losses.values()).backward()


def test_distance_loss_is_zero_for_exact_rays_and_counts_object_pixels_only() -> None:
    ((_, target),) = discs(1, size=32)
    label_map = torch.zeros(32, 32, dtype=torch.int64)
    for k, mask in enumerate(target.masks, start=1):  # type: ignore[union-attr]
        label_map[mask] = k
    exact = ray_distances(label_map, 32)[None]  # [1, 32, H, W]
    model = _tiny()
    outputs = {"prob_logits": torch.zeros(1, 1, 32, 32), "distances": exact.clone()}
    assert model.loss(outputs, [target])["loss_distance"] == 0
    outputs["distances"][:, :, label_map == 0] = 50.0  # background rays are not trained
    assert model.loss(outputs, [target])["loss_distance"] == 0
    outputs["distances"] = exact + 1.0  # every object ray 1 px long: the weighted mean L1 is 1 (x weight 0.2)
    assert torch.isclose(model.loss(outputs, [target])["loss_distance"], torch.tensor(0.2))


def test_multi_class_outputs_and_loss() -> None:
    model = _tiny(num_classes=3)
    ((image, target),) = discs(1, size=32)
    target = Instances(target.image_size, masks=target.masks, labels=torch.arange(len(target)) % 3)
    batch = ImageBatch.from_tensors([image], 32)
    outputs = model(batch)
    assert outputs["class_logits"].shape == (1, 3, 32, 32)
    losses = model.loss(outputs, [target])
    assert "loss_class" in losses and torch.isfinite(losses["loss_class"])


@pytest.mark.parametrize(("min_size", "max_size"), [(None, None), (64, 80)])
def test_predictions_come_back_at_the_original_size(min_size: int | None, max_size: int | None) -> None:
    model = _tiny(min_size=min_size, max_size=max_size, prob_threshold=0.0).eval()
    model.postprocessor.max_candidates = 300  # random weights: every pixel is a candidate
    image = (np.random.default_rng(0).random((100, 130, 3)) * 255).astype(np.uint8)
    batch = model.preprocess([torch.from_numpy(image).permute(2, 0, 1)])
    with torch.no_grad():
        (pred,) = model.postprocess(model(batch), batch)
    assert pred.image_size == (100, 130) and len(pred) > 0
    assert pred.is_compact and pred.masks is not None and pred.masks.shape[1:] == (100, 130)
    assert pred.scores is not None and len(pred.scores) == len(pred)


def _disc_maps(size: tuple[int, int] = (60, 90)) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Ideal maps of two overlapping-in-extent touching discs and a speck: the target probability (normalised
    distance transform) and the exact rays."""
    yy, xx = np.mgrid[: size[0], : size[1]]
    label_map = np.zeros(size, np.int64)
    label_map[(yy - 30) ** 2 + (xx - 30) ** 2 < 15**2] = 1
    label_map[(yy - 30) ** 2 + (xx - 57) ** 2 < 13**2] = 2  # touches disc 1
    label_map[(yy - 8) ** 2 + (xx - 80) ** 2 < 2**2] = 3  # a speck of 9 pixels, below min_area
    maps = {
        "prob": normalized_distance_map(label_map),
        "distances": ray_distances(torch.from_numpy(label_map), 32).numpy(),
    }
    return maps, label_map


def test_polygon_nms_keeps_one_polygon_per_disc() -> None:
    maps, label_map = _disc_maps()
    post = StarConvexPostprocessor(prob_threshold=0.5, nms_threshold=0.4, min_area=20)
    pred = post.group(maps)
    assert len(pred) == 2 and pred.is_compact
    assert pred.masks is not None and pred.scores is not None
    for k in (1, 2):
        truth = torch.from_numpy(label_map == k)
        iou = [float((m & truth).sum() / (m | truth).sum()) for m in pred.masks]
        assert max(iou) > 0.9
    assert (pred.scores > 0.9).all()  # the centre pixels win
    assert (pred.boxes == pred.box_masks.boxes()).all()  # type: ignore[union-attr]  # tight boxes of the crops


def test_skipping_covered_candidates_keeps_the_same_discs() -> None:
    maps, _ = _disc_maps()
    exact = polygon_nms(maps["prob"], maps["distances"], 0.5, 0.4, 20, 20000, 1000, 1, skip_covered=False)
    quick = polygon_nms(maps["prob"], maps["distances"], 0.5, 0.4, 20, 20000, 1000, 1, skip_covered=True)
    assert exact[0].tolist() == quick[0].tolist() and len(quick[0]) == 2
    for a, b in zip(exact[2], quick[2], strict=True):
        assert np.array_equal(a, b)


def test_polygon_nms_order_and_threshold() -> None:
    # two candidate pixels, 4 rays of 2.5 px: diamonds of the 13 pixel centres with |dy| + |dx| <= 2, the second
    # one column to the right; they share 4 + 2 + 2 = 8 pixels (rows 0, +-1 of the centre): IoU 8 / 18 = 0.444
    prob = np.zeros((10, 10), np.float32)
    prob[4, 4], prob[4, 5] = 0.9, 0.8
    distances = np.zeros((4, 10, 10), np.float32)
    distances[:, 4, 4] = distances[:, 4, 5] = 2.5
    kept, windows, crops = polygon_nms(prob, distances, 0.5, 0.4, 1, 100, 100)
    assert kept.tolist() == [44] and windows[0] == (2, 2, 7, 7) and int(crops[0].sum()) == 13
    kept, _, _ = polygon_nms(prob, distances, 0.5, 0.5, 1, 100, 100)  # IoU under 0.5: both kept, best first
    assert kept.tolist() == [44, 45]
    kept, _, _ = polygon_nms(prob, distances, 0.85, 0.5, 1, 100, 100)  # probability threshold
    assert kept.tolist() == [44]
    kept, _, _ = polygon_nms(prob, distances, 0.5, 0.5, 1, 100, 1)  # max_detections
    assert kept.tolist() == [44]
    kept, _, _ = polygon_nms(prob, distances, 0.5, 0.5, 14, 100, 100)  # min_area: 13 pixels are too few
    assert kept.size == 0
    kept, _, _ = polygon_nms(prob, distances, 0.5, 0.5, 1, 100, 100, candidate_stride=2)  # column 5 is off the grid
    assert kept.tolist() == [44]


def test_postprocess_of_an_empty_prediction() -> None:
    outputs = {"prob_logits": torch.full((1, 1, 32, 32), -5.0), "distances": torch.ones(1, 32, 32, 32)}
    (pred,) = StarConvexPostprocessor()(outputs, ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(32, 32)]))
    assert len(pred) == 0 and pred.masks is not None and pred.masks.shape == (0, 32, 32)


def test_postprocess_scales_rays_of_a_resized_prediction() -> None:
    maps, _ = _disc_maps((60, 90))
    logits = torch.logit(torch.from_numpy(maps["prob"]).clamp(1e-4, 1 - 1e-4))[None, None]
    outputs = {"prob_logits": logits, "distances": torch.from_numpy(maps["distances"])[None]}
    batch = ImageBatch(torch.zeros(1, 3, 60, 90), [(60, 90)], [(120, 180)])  # the model saw a half-size image
    (pred,) = StarConvexPostprocessor(min_area=80)(outputs, batch)
    assert len(pred) == 2 and pred.image_size == (120, 180)
    areas = sorted(pred.box_masks.areas().tolist())  # type: ignore[union-attr]
    assert abs(areas[1] - 4 * np.pi * 15**2) < 0.1 * 4 * np.pi * 15**2  # the big disc at twice its radius


def test_export_and_runtime_match_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from instseg_runtime import OnnxPredictor

    from instseg.export import to_onnx

    torch.manual_seed(0)
    model = _tiny(num_classes=2, min_size=64, max_size=96).eval()
    predictor = OnnxPredictor(to_onnx(model, tmp_path / "star.onnx"), threads=1)
    assert predictor.family == "star_convex"
    rng = np.random.default_rng(0)
    for shape in ((64, 80), (50, 70)):  # not resized / resized
        image = rng.integers(0, 255, (*shape, 3)).astype(np.uint8)
        outputs, size = predictor.raw(image)
        batch = model.preprocess([torch.from_numpy(image).permute(2, 0, 1)])
        with torch.no_grad():
            expected = model.postprocessor.original_maps(model(batch), 0, batch)
        maps = {k: np.asarray(v).reshape(np.asarray(v).shape[-len(expected[k].shape) :]) for k, v in outputs.items()}
        for key, value in expected.items():
            np.testing.assert_allclose(maps[key], value, atol=1e-4, rtol=1e-4, err_msg=key)
        # the same maps through both groupings: thresholds at this image's quantiles (random weights)
        params = dict(predictor.grouping, prob_threshold=float(np.quantile(maps["prob"], 0.97)), min_area=2)
        post = StarConvexPostprocessor(params["prob_threshold"], params["nms_threshold"], min_area=2)
        ref = post.group(maps)
        from instseg_runtime.star_convex import star_convex_grouping

        out = star_convex_grouping(maps, params)
        assert len(ref) == len(out) > 0 and out.masks.shape == (len(out), *size)
        assert np.array_equal(ref.masks.numpy(), out.masks)  # type: ignore[union-attr]
        assert np.array_equal(ref.boxes.numpy(), out.boxes)
        assert np.array_equal(ref.scores.numpy(), out.scores) and np.array_equal(ref.labels.numpy(), out.labels)


def test_learns_synthetic_discs() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = star_convex_unet(base_channels=8, depth=3)
    assert train_and_score(model, steps=200) > 0.75  # 0.89 after 200 steps (0.36 after 100): rays learn slower
