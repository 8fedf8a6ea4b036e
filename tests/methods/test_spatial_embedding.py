"""SpatialEmbeddings method: Lovasz hinge, loss on ideal/random outputs, clustering of hand-made maps, model checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dense_testdata import batch_with_an_empty_image, discs, train_and_score
from instseg_runtime.grouping import GROUPINGS

from instseg.export.dense_graph import GROUPING_KEYS
from instseg.methods.spatial_embedding import (
    SpatialEmbeddingLoss,
    SpatialEmbeddingPostprocessor,
    SpatialEmbeddingSegmenter,
    lovasz_hinge,
)
from instseg.methods.spatial_embedding.builders import spatial_embedding_resnet18, spatial_embedding_unet
from instseg.registry import create_model, list_models
from instseg.structures import ImageBatch, Instances

SCALE = 128.0  # the builders' default coord_scale: pixels per embedding unit


def _tiny(**kwargs: object) -> SpatialEmbeddingSegmenter:
    return spatial_embedding_unet(base_channels=4, depth=2, **kwargs)  # type: ignore[arg-type]


def test_builders_are_registered() -> None:
    assert {"spatial_embedding_unet", "spatial_embedding_resnet18"} <= set(list_models("spatial_embedding"))
    model = create_model("spatial_embedding_unet", base_channels=4, depth=2, num_classes=3, sigma_dims=1, min_size=64)
    assert isinstance(model, SpatialEmbeddingSegmenter) and model.min_size == 64
    outputs = model(ImageBatch.from_tensors([torch.zeros(3, 32, 32)], 32))
    assert outputs["embedding"].shape == (1, 2, 32, 32)
    assert outputs["sigma"].shape == (1, 1, 32, 32) and bool((outputs["sigma"] > 0).all())
    assert outputs["seed"].shape == (1, 3, 32, 32)
    # offsets start at zero: the embedding is the pixel's own coordinate (y, x) / coord_scale
    assert torch.allclose(outputs["embedding"][0, :, 5, 7], torch.tensor([5.0, 7.0]) / SCALE, atol=0.01)


def test_lovasz_hinge_hand_computed() -> None:
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    logits = torch.tensor([[1.0, -1.0, 3.0], [2.0, 0.5, -1.0], [0.0, -2.0, -5.0]], requires_grad=True)
    loss = lovasz_hinge(logits, labels)
    # row 0, perfect with margin 1: every hinge error 1 - logit * sign <= 0 -> 0.
    # row 1: errors 1 - [2, -0.5, -1] = [-1, 1.5, 2]; sorted decreasing [2, 1.5, -1] with labels [1, 0, 1].
    #   2 positives; after each position intersection = [1, 1, 0], union = [2, 3, 3], Jaccard loss = [1/2, 2/3, 1],
    #   increments [1/2, 1/6, 1/3]; loss = 2 * 1/2 + 1.5 * 1/6 + relu(-1) * 1/3 = 1.25.
    # row 2, no positives: errors [1, -1, -4]; the first false positive alone makes Jaccard loss 1 -> 1 * 1 = 1.
    assert torch.allclose(loss, torch.tensor([0.0, 1.25, 1.0]))
    loss.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert float(logits.grad[1, 2]) < 0  # the missed positive is pushed up
    assert float(logits.grad[1, 1]) > 0  # the false positive is pushed down


def _label_map() -> np.ndarray:
    """Two touching discs and a separate one in a 40 x 64 image."""
    yy, xx = np.mgrid[:40, :64]
    label_map = np.zeros((40, 64), np.int64)
    label_map[(yy - 20) ** 2 + (xx - 14) ** 2 < 8**2] = 1
    label_map[(yy - 20) ** 2 + (xx - 29) ** 2 < 7**2] = 2  # touches disc 1
    label_map[(yy - 18) ** 2 + (xx - 52) ** 2 < 6**2] = 3
    return label_map


def _ideal_outputs(label_map: np.ndarray, sigma_px: float = 1.5) -> dict[str, torch.Tensor]:
    """Every object pixel embedded exactly at its object's centroid, background at its own coordinate."""
    h, w = label_map.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    emb = np.stack([yy, xx])
    for k in range(1, label_map.max() + 1):
        own = label_map == k
        emb[:, own] = np.array([yy[own].mean(), xx[own].mean()])[:, None]
    return {
        "embedding": torch.from_numpy(emb / SCALE)[None],
        "sigma": torch.full((1, 2, h, w), sigma_px / SCALE),
        "seed": torch.from_numpy((label_map > 0).astype(np.float32))[None, None],
    }


def test_loss_is_near_zero_for_ideal_outputs_and_higher_for_random() -> None:
    label_map = _label_map()
    masks = torch.from_numpy(label_map[None] == np.arange(1, 4)[:, None, None])
    target = Instances(label_map.shape, masks=masks)
    criterion = SpatialEmbeddingLoss(coord_scale=SCALE)
    ideal = criterion(_ideal_outputs(label_map), [target])
    assert set(ideal) == {"loss_instance", "loss_smooth", "loss_seed"}
    assert all(float(v) < 1e-3 for v in ideal.values()), ideal
    torch.manual_seed(0)
    noisy = {k: v.clone() for k, v in _ideal_outputs(label_map).items()}
    noisy["embedding"] = noisy["embedding"] + 10.0 / SCALE * torch.randn_like(noisy["embedding"])
    noisy["sigma"] = noisy["sigma"] * torch.rand_like(noisy["sigma"]).add(0.5)
    noisy["seed"] = torch.rand_like(noisy["seed"])
    worse = criterion(noisy, [target])
    assert all(float(worse[k]) > float(ideal[k]) + 0.05 for k in ideal), worse


def test_loss_with_an_empty_batch_gives_gradients_to_every_parameter() -> None:
    model = _tiny(num_classes=2)
    batch = ImageBatch.from_tensors([torch.full((3, 32, 32), 60.0), torch.full((3, 24, 32), 50.0)], 32)
    targets = [Instances.empty((32, 32)), Instances.empty((24, 32))]
    losses = model.loss(model(batch), targets)
    total = sum(losses.values())
    assert torch.isfinite(total)  # type: ignore[arg-type]
    total.backward()  # type: ignore[union-attr]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("builder", [_tiny, spatial_embedding_resnet18])
def test_forward_backward_with_an_empty_image(builder) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = builder()
    batch, targets = batch_with_an_empty_image()
    outputs = model(batch, targets)
    assert outputs["embedding"].shape == (2, 2, 64, 64) and outputs["seed"].shape == (2, 1, 64, 64)
    losses = model.loss(outputs, targets)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_multi_class_seed_targets_and_bad_labels() -> None:
    model = _tiny(num_classes=2)
    ((image, target),) = discs(1, size=32)
    labelled = Instances(target.image_size, masks=target.masks, labels=torch.arange(len(target)) % 2)
    batch = ImageBatch.from_tensors([image], 32)
    outputs = model(batch)
    assert torch.isfinite(sum(model.loss(outputs, [labelled]).values()))  # type: ignore[arg-type]
    wrong = Instances(target.image_size, masks=target.masks, labels=torch.full((len(target),), 2))
    with pytest.raises(ValueError, match="label 2"):
        model.loss(outputs, [wrong])


def _blob_outputs() -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Two objects whose pixels' embeddings form two tight Gaussian blobs; object 2 fires the class-1 seed map."""
    label_map = np.zeros((40, 60), np.int64)
    label_map[5:20, 5:25] = 1
    label_map[15:35, 30:55] = 2
    torch.manual_seed(0)
    centres = torch.tensor([[0.5, 0.5], [0.1, 0.1], [0.3, 0.35]])  # background, object 1, object 2 (units)
    labels = torch.from_numpy(label_map)
    embedding = centres[labels].permute(2, 0, 1) + 0.004 * torch.randn(2, 40, 60)
    seed = torch.zeros(2, 40, 60)
    seed[0][labels == 1] = 0.8
    seed[1][labels == 2] = 0.85
    seed[0, 12, 15] = 0.95  # a clear seed pixel in object 1
    outputs = {"embedding": embedding[None], "sigma": torch.full((1, 1, 40, 60), 0.02), "seed": seed[None]}
    return outputs, label_map


def test_clustering_finds_two_gaussian_blobs() -> None:
    outputs, label_map = _blob_outputs()
    batch = ImageBatch(torch.zeros(1, 3, 40, 60), [(40, 60)], [(40, 60)])
    (pred,) = SpatialEmbeddingPostprocessor(min_area=10)(outputs, batch)
    assert len(pred) == 2 and pred.masks is not None and pred.scores is not None
    # seeds are taken in decreasing order: object 1 (0.95) first, then object 2 (0.85)
    assert torch.equal(pred.masks[0], torch.from_numpy(label_map == 1))
    assert torch.equal(pred.masks[1], torch.from_numpy(label_map == 2))
    assert torch.allclose(pred.scores, torch.tensor([0.95, 0.85]))
    assert pred.labels.tolist() == [0, 1]
    assert pred.boxes.tolist() == [[5.0, 5.0, 25.0, 20.0], [30.0, 15.0, 55.0, 35.0]]


def test_clustering_rules() -> None:
    outputs, label_map = _blob_outputs()
    post = SpatialEmbeddingPostprocessor(seed_threshold=0.9)  # only object 1's seed pixel is confident enough
    labels, scores, classes = post.cluster(outputs["embedding"][0], outputs["sigma"][0], outputs["seed"][0])
    assert labels.shape == (40, 60) and labels.dtype == torch.int64
    assert torch.equal(labels, torch.from_numpy((label_map == 1).astype(np.int64)))
    assert scores.tolist() == pytest.approx([0.95]) and classes.tolist() == [0]
    post = SpatialEmbeddingPostprocessor(min_area=400)  # object 1 (300 px) too small, object 2 (500 px) kept
    labels, _, classes = post.cluster(outputs["embedding"][0], outputs["sigma"][0], outputs["seed"][0])
    assert torch.equal(labels, torch.from_numpy((label_map == 2).astype(np.int64))) and classes.tolist() == [1]


def _cluster_by_full_scan(
    post: SpatialEmbeddingPostprocessor, embedding: torch.Tensor, sigma: torch.Tensor, seed: torch.Tensor
) -> torch.Tensor:
    """The clustering rules read literally: next seed = argmax over every unclustered pixel, phi over every pixel."""
    seed_max = seed.reshape(seed.shape[0], -1).max(0)[0]
    pixels = torch.nonzero(seed_max > post.fg_threshold).squeeze(1)
    e = embedding.reshape(2, -1)[:, pixels].t()
    inv_two_var = 0.5 / sigma.reshape(sigma.shape[0], -1)[:, pixels].t().pow(2).clamp(min=1e-12)
    candidates, assigned, found = seed_max[pixels].clone(), torch.zeros_like(pixels), 0
    for _ in range(post.max_proposals):
        i = int(candidates.argmax())
        if candidates[i] < post.seed_threshold:
            break
        proposal = torch.exp(-((e - e[i]).pow(2) * inv_two_var[i]).sum(1)) > 0.5
        proposal[i] = True
        new = proposal & (candidates >= 0)
        if int(new.sum()) >= post.min_area and int(new.sum()) > post.min_unclustered * int(proposal.sum()):
            found += 1
            assigned[new] = found
        candidates[proposal] = -1.0
    labels = torch.zeros(seed_max.numel(), dtype=torch.int64)
    labels[pixels] = assigned
    return labels.view(seed.shape[-2:])


@pytest.mark.parametrize("sigma_dims", [1, 2])
def test_windowed_clustering_equals_the_full_scan(sigma_dims: int) -> None:
    # random maps with many saturated (tied) seeds, embeddings crossing each other, narrow and wide bandwidths
    g = torch.Generator().manual_seed(sigma_dims)
    embedding = torch.rand(2, 70, 90, generator=g) * 0.7
    sigma = torch.rand(sigma_dims, 70, 90, generator=g) * 0.06 + 0.005
    seed = (torch.rand(1, 70, 90, generator=g) * 2.5).clamp(max=1.0)
    for fg, seed_threshold, min_area in [(0.5, 0.7, 3), (0.1, 0.2, 1), (0.6, 0.95, 2)]:
        post = SpatialEmbeddingPostprocessor(fg, seed_threshold, min_area)
        labels, scores, _ = post.cluster(embedding, sigma, seed)
        assert len(scores) > 5
        assert torch.equal(labels, _cluster_by_full_scan(post, embedding, sigma, seed))
        maps = {"embedding": embedding.numpy(), "sigma": sigma.numpy(), "seed": seed.numpy()}
        params = {k: getattr(post, k) for k in GROUPING_KEYS["spatial_embedding"]}
        runtime = GROUPINGS["spatial_embedding"](maps, params)  # the torch-free runtime's numpy form
        assert np.array_equal(runtime.scores, scores.numpy())
        expected = [(labels == k + 1).numpy() for k in range(len(scores))]
        assert len(runtime.masks) == len(expected)
        assert all(np.array_equal(a, b) for a, b in zip(runtime.masks, expected, strict=True))


def test_clustering_of_an_empty_prediction_and_bad_thresholds() -> None:
    outputs = {
        "embedding": torch.zeros(1, 2, 32, 32),
        "sigma": torch.ones(1, 2, 32, 32),
        "seed": torch.zeros(1, 1, 32, 32),
    }
    (pred,) = SpatialEmbeddingPostprocessor()(outputs, ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(32, 32)]))
    assert len(pred) == 0 and pred.masks is not None and pred.masks.shape == (0, 32, 32)
    with pytest.raises(ValueError, match="thresholds"):
        SpatialEmbeddingPostprocessor(seed_threshold=1.5)
    with pytest.raises(ValueError, match="center"):
        SpatialEmbeddingLoss(center="median")
    with pytest.raises(ValueError, match="sigma_dims"):
        _tiny(sigma_dims=3)


def test_predictions_come_back_at_the_original_size() -> None:
    model = _tiny(min_size=64, max_size=80, fg_threshold=0.0, seed_threshold=0.0).eval()
    image = (np.random.default_rng(0).random((100, 130, 3)) * 255).astype(np.uint8)
    pred = model.predict(image)
    assert pred.image_size == (100, 130) and len(pred) > 0
    assert pred.masks is not None and pred.masks.shape[1:] == (100, 130)


@pytest.mark.slow
def test_learns_synthetic_discs() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = spatial_embedding_unet(base_channels=8, depth=3)
    assert train_and_score(model) > 0.7  # about 0.86 after the 100 steps (a few seconds on one thread)
