"""Embedding method: discriminative loss, seed-and-grow clustering on hand-made embeddings, model checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dense_testdata import batch_with_an_empty_image, discs, train_and_score

from instseg.methods.embedding import EmbeddingPostprocessor, EmbeddingSegmenter, discriminative_loss
from instseg.methods.embedding.builders import embedding_resnet18, embedding_unet
from instseg.ops.instance_maps import normalized_distance_map
from instseg.registry import create_model, list_models
from instseg.structures import ImageBatch, Instances


def _tiny(**kwargs: object) -> EmbeddingSegmenter:
    return embedding_unet(base_channels=4, depth=2, **kwargs)  # type: ignore[arg-type]


def test_builders_are_registered() -> None:
    assert {"embedding_unet", "embedding_resnet18"} <= set(list_models("embedding"))
    model = create_model("embedding_unet", base_channels=4, depth=2, embedding_dim=12, min_size=64, max_size=96)
    assert isinstance(model, EmbeddingSegmenter) and model.min_size == 64
    batch = ImageBatch.from_tensors([torch.zeros(3, 32, 32)], 32)
    assert model(batch)["embedding"].shape == (1, 12, 32, 32)


def test_discriminative_loss_terms() -> None:
    label_map = torch.zeros(4, 6, dtype=torch.int64)
    label_map[:, :3] = 1
    label_map[:, 3:5] = 2  # column 5 is background
    far = torch.zeros(2, 4, 6)
    far[0, :, 3:5] = 5.0  # object means 5 apart > 2 * delta_d, every pixel on its mean
    variance, distance, reg = discriminative_loss(far, label_map, delta_v=0.5, delta_d=1.5)
    assert float(variance) == pytest.approx(0.0, abs=1e-6) and float(distance) == pytest.approx(0.0, abs=1e-6)
    assert float(reg) == pytest.approx(2.5, abs=1e-3)
    close = torch.zeros(2, 4, 6)
    close[0, :, 3:5] = 1.0  # means only 1 apart: pushed by (3 - 1)^2 = 4
    _, distance, _ = discriminative_loss(close, label_map, delta_v=0.5, delta_d=1.5)
    assert float(distance) == pytest.approx(4.0, rel=1e-3)
    close[1, 0, :3] = 3.0  # one row far from its object's mean: pulled
    variance, _, _ = discriminative_loss(close, label_map, delta_v=0.5, delta_d=1.5)
    assert float(variance) > 0
    empty = discriminative_loss(torch.randn(2, 4, 6, requires_grad=True), torch.zeros(4, 6, dtype=torch.int64))
    assert all(float(t.detach()) == 0 for t in empty) and empty[0].requires_grad


@pytest.mark.parametrize("builder", [_tiny, embedding_resnet18])
def test_forward_backward_with_an_empty_image(builder) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = builder()
    batch, targets = batch_with_an_empty_image()
    outputs = model(batch, targets)
    assert outputs["embedding"].shape == (2, 8, 64, 64)
    assert outputs["fg_logits"].shape == outputs["seed_logits"].shape == (2, 1, 64, 64)
    losses = model.loss(outputs, targets)
    assert set(losses) == {"loss_embedding", "loss_fg", "loss_seed"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_multi_class_outputs_and_loss() -> None:
    model = _tiny(num_classes=2)
    ((image, target),) = discs(1, size=32)
    target = Instances(target.image_size, masks=target.masks, labels=torch.arange(len(target)) % 2)
    batch = ImageBatch.from_tensors([image], 32)
    outputs = model(batch)
    assert outputs["class_logits"].shape == (1, 2, 32, 32)
    losses = model.loss(outputs, [target])
    assert torch.isfinite(losses["loss_class"])


def test_predictions_come_back_at_the_original_size() -> None:
    model = _tiny(min_size=64, max_size=80, fg_threshold=0.0, seed_threshold=0.0).eval()
    image = (np.random.default_rng(0).random((100, 130, 3)) * 255).astype(np.uint8)
    pred = model.predict(image)
    assert pred.image_size == (100, 130)
    assert pred.masks is not None and pred.masks.shape[1:] == (100, 130)


def _hand_made_outputs() -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Two touching discs with distinct embeddings and a far third disc that shares the first one's embedding."""
    yy, xx = np.mgrid[:60, :100]
    label_map = np.zeros((60, 100), np.int64)
    label_map[(yy - 30) ** 2 + (xx - 25) ** 2 < 12**2] = 1
    label_map[(yy - 30) ** 2 + (xx - 45) ** 2 < 10**2] = 2  # touches disc 1
    label_map[(yy - 30) ** 2 + (xx - 82) ** 2 < 10**2] = 3  # separate, same embedding as disc 1
    centres = torch.tensor([[0.0, 0.0], [2.0, 2.0], [-3.0, 1.0], [2.0, 2.0]])  # background, 1, 2, 3
    torch.manual_seed(0)
    embedding = centres[torch.from_numpy(label_map)].permute(2, 0, 1) + 0.15 * torch.randn(2, 60, 100)
    seed = torch.from_numpy(normalized_distance_map(label_map)).clamp(1e-3, 1 - 1e-3)
    outputs = {
        "embedding": embedding[None],
        "fg_logits": torch.from_numpy(np.where(label_map > 0, 5.0, -5.0)).float()[None, None],
        "seed_logits": torch.logit(seed)[None, None],
    }
    return outputs, label_map


def test_clustering_separates_touching_and_look_alike_objects() -> None:
    outputs, label_map = _hand_made_outputs()
    batch = ImageBatch(torch.zeros(1, 3, 60, 100), [(60, 100)], [(60, 100)])
    (pred,) = EmbeddingPostprocessor(margin=1.5, min_area=10)(outputs, batch)
    assert len(pred) == 3
    assert pred.masks is not None and pred.scores is not None and (pred.scores > 0.9).all()
    truth = torch.from_numpy(label_map)
    for k in (1, 2, 3):
        assert max(float((m & (truth == k)).sum() / (m | (truth == k)).sum()) for m in pred.masks) > 0.95


def test_cluster_returns_a_label_map() -> None:
    outputs, label_map = _hand_made_outputs()
    post = EmbeddingPostprocessor()
    labels = post.cluster(
        outputs["embedding"][0], outputs["fg_logits"][0, 0].sigmoid(), outputs["seed_logits"][0, 0].sigmoid()
    )
    assert labels.shape == (60, 100) and labels.dtype == torch.int64
    assert sorted(labels.unique().tolist()) == [0, 1, 2, 3]
    assert torch.equal(labels > 0, torch.from_numpy(label_map > 0))


def test_clustering_of_an_empty_prediction() -> None:
    outputs = {
        "embedding": torch.zeros(1, 8, 32, 32),
        "fg_logits": torch.full((1, 1, 32, 32), -5.0),
        "seed_logits": torch.zeros(1, 1, 32, 32),
    }
    (pred,) = EmbeddingPostprocessor()(outputs, ImageBatch(torch.zeros(1, 3, 32, 32), [(32, 32)], [(32, 32)]))
    assert len(pred) == 0 and pred.masks is not None and pred.masks.shape == (0, 32, 32)


def test_bad_margins_raise() -> None:
    with pytest.raises(ValueError, match="delta_v"):
        embedding_unet(base_channels=4, depth=2, delta_v=2.0, delta_d=1.0)


@pytest.mark.slow
def test_learns_synthetic_discs() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = embedding_unet(base_channels=8, depth=3)
    assert train_and_score(model) > 0.5


@pytest.mark.parametrize("per_image", [True, False])
def test_per_image_normalization_switch(per_image: bool) -> None:
    # the percentile stretch makes the maps blind to exposure; without it (the dsb2018 recipe's rule, so that
    # tiles of a large image behave like whole ones) a darker image gives other maps
    torch.manual_seed(0)
    model = _tiny(per_image_normalization=per_image).eval()
    assert (model.percentiles is None) is not per_image
    image = torch.rand(3, 32, 32) * 200
    with torch.no_grad():
        bright = model(ImageBatch.from_tensors([image], 32))["embedding"]
        dark = model(ImageBatch.from_tensors([image * 0.5], 32))["embedding"]
    assert torch.allclose(bright, dark, atol=1e-4) is per_image
