"""Every registered model: one training step on a tiny batch and a valid prediction (models are tested by
being registered; names ending in ``_test`` are test-only models registered by other tests and are skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import pytest
import torch

import instseg
from instseg import ImageBatch, Instances
from instseg.methods.segmenter import InstanceSegmenter

NUM_CLASSES = 3
MODEL_NAMES = [name for name in instseg.list_models() if not name.endswith("_test")]


def _build(name: str) -> torch.nn.Module:
    try:
        return instseg.create_model(name, num_classes=NUM_CLASSES, min_size=128, max_size=128)
    except ModuleNotFoundError as err:  # optional extras (e.g. timm) raise this with an install hint
        if (err.name or "").split(".")[0] not in ("timm",):
            raise  # a module missing inside instseg (or a typo in an import) is a failure, never a skip
        pytest.skip(f"{name} needs the optional package {err.name}: {err}")


def _tiny_batch() -> tuple[ImageBatch, list[Instances]]:
    """Raw 0..255 pixels as the collate gives them: a 96x128 image with two objects, a 128x96 one with none."""
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 96, 128, generator=g) * 255, torch.rand(3, 128, 96, generator=g) * 255]
    masks = torch.zeros(2, 96, 128, dtype=torch.bool)
    masks[0, 8:48, 10:60] = True
    masks[1, 40:90, 70:120] = True
    images[0][:, masks[0]] = 230.0  # make the objects visible
    images[0][:, masks[1]] = 20.0
    targets = [Instances((96, 128), labels=torch.tensor([0, 2]), masks=masks), Instances.empty((128, 96))]
    return ImageBatch.from_tensors(images, 32, 0.0), targets


@contextmanager
def _batchnorm_calls(model: torch.nn.Module) -> Iterator[dict[str, int]]:
    """Count the calls of every trainable BatchNorm of ``model`` (by module name) inside the ``with`` block."""
    calls: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.training:
            hook = partial(lambda key, *_: calls.__setitem__(key, calls.get(key, 0) + 1), name)
            handles.append(module.register_forward_pre_hook(hook))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_trains_and_predicts(name: str) -> None:
    torch.manual_seed(0)
    model = _build(name)
    assert isinstance(model, InstanceSegmenter)
    assert model.num_classes == NUM_CLASSES

    # training: forward + loss + backward on a batch holding an image with no objects
    model.train()
    raw, targets = _tiny_batch()
    batch = raw
    with _batchnorm_calls(model) as calls:
        outputs = model(batch, targets)
    # a trainable BatchNorm run on several inputs (a head shared by pyramid levels) normalises each with its own
    # batch statistics in training but with one mixed running average in eval mode: the model then predicts
    # differently from how it was trained
    shared = [name for name, count in calls.items() if count > 1]
    assert not shared, f"BatchNorm layers applied more than once per forward: {shared[:5]}"
    assert all(isinstance(v, torch.Tensor) for v in outputs.values()), "forward must return a dict of tensors"
    losses = model.loss(outputs, targets)
    assert losses and all(k.startswith("loss_") for k in losses), sorted(losses)
    for key, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), f"{key} = {value}"
    sum(losses.values()).backward()  # type: ignore[union-attr]
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    # every trainable parameter must take part (DistributedDataParallel fails on unused ones)
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)  # type: ignore[arg-type]
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)  # type: ignore[union-attr]

    # inference: postprocess maps back to each image's original size
    model.eval()
    originals = [(100, 120), (90, 70)]
    with torch.no_grad():
        batch = model.preprocess([torch.rand(3, h, w) * 255 for h, w in originals])
        predictions = model.postprocess(model(batch), batch)
    assert len(predictions) == 2
    for pred, (h, w) in zip(predictions, originals, strict=True):
        n = len(pred)
        assert pred.image_size == (h, w)
        assert pred.masks is not None and pred.masks.dtype == torch.bool and pred.masks.shape == (n, h, w)
        assert pred.scores is not None and pred.scores.shape == (n,)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert pred.labels.dtype == torch.int64 and ((pred.labels >= 0) & (pred.labels < NUM_CLASSES)).all()
        assert pred.boxes.shape == (n, 4) and (pred.boxes >= 0).all()
        assert (pred.boxes[:, 0::2] <= w).all() and (pred.boxes[:, 1::2] <= h).all()
        assert (pred.boxes[:, 2:] >= pred.boxes[:, :2]).all()
    # Export (ONNX vs PyTorch) is not checked here yet: it comes with the ONNX export work.
