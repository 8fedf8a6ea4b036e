"""Every registered model rebuilds from its checkpoint alone, offline, and predicts identically.

Each model is built with non-default arguments (class count, resize rule, a post-processing option passed through
``**options`` where the builder has them) and, where the builder can fetch ImageNet weights, also with
``pretrained_backbone=True`` (torchvision's download replaced by random weights of the same architecture). The
checkpoint is saved the way the trainer saves it and loaded with ``instseg.load_model`` while any weight download
raises: the rebuilt model must then give the same predictions to the last bit.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models._api import WeightsEnum  # private: the one hook through which torchvision fetches weights

import instseg
from instseg.engine.checkpoint import save_checkpoint
from instseg.engine.config import Config, ModelConfig
from instseg.engine.config_io import config_to_dict
from instseg.registry import _MODELS

MODEL_NAMES = [name for name in instseg.list_models() if not name.endswith("_test")]
PRETRAINABLE = [
    name
    for name in MODEL_NAMES
    if "pretrained_backbone" in inspect.signature(_MODELS[name]).parameters and "timm" not in name
]


def _random_weights_of_same_architecture(self: WeightsEnum, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Stands in for a download: a freshly initialised torchvision model whose weights enum is ``type(self)``."""
    for name in torchvision.models.list_models():
        if torchvision.models.get_model_weights(name) is type(self):
            return torchvision.models.get_model(name, weights=None).state_dict()
    raise AssertionError(f"no torchvision model uses {type(self).__name__}")


def _no_download(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a checkpoint rebuild tried to download weights")


def _kwargs(name: str) -> dict[str, Any]:
    """Non-default arguments: 2 classes, a resize rule, and an option through ``**options`` where accepted."""
    kwargs: dict[str, Any] = {"num_classes": 2, "min_size": 96, "max_size": 128}
    params = inspect.signature(_MODELS[name]).parameters
    takes_options = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_options and name.split("_")[0] in ("watershed", "embedding", "spatial"):
        kwargs["min_area"] = 3  # a post-processing option of every bottom-up builder
    return kwargs


def _save(model: torch.nn.Module, name: str, kwargs: dict[str, Any], path: Path) -> Path:
    state = {
        "config": config_to_dict(Config(model=ModelConfig(name, kwargs))),
        "rebuild_kwargs": dict(model.rebuild_kwargs),  # type: ignore[arg-type]
        "model": model.state_dict(),
        "classes": {"category_ids": [4, 9], "class_names": ["a", "b"]},
    }
    return save_checkpoint(state, path)


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (100, 120, 3), dtype=np.uint8)
    image[20:50, 30:70] = 220
    image[60:90, 10:40] = 180
    return image


def _check_rebuild(model: torch.nn.Module, name: str, kwargs: dict[str, Any], tmp_path: Path, monkeypatch: Any) -> None:
    model.eval()
    expected = model.predict(_image())  # type: ignore[operator]
    path = _save(model, name, kwargs, tmp_path / f"{name}.pt")
    with monkeypatch.context() as offline:
        offline.setattr(WeightsEnum, "get_state_dict", _no_download)
        offline.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        rebuilt = instseg.load_model(path)
    assert type(rebuilt) is type(model)
    assert rebuilt.class_names == ["a", "b"] and rebuilt.category_ids == [4, 9]
    assert (rebuilt.num_classes, rebuilt.min_size, rebuilt.max_size) == (2, 96, 128)
    assert torch.equal(rebuilt.pixel_mean, model.pixel_mean) and torch.equal(rebuilt.pixel_std, model.pixel_std)
    # raw outputs too: with random weights a model may detect nothing, and then predictions alone prove little
    batch = model.preprocess([torch.from_numpy(_image()).permute(2, 0, 1)])  # type: ignore[operator]
    with torch.no_grad():
        raw_expected, raw_got = model(batch), rebuilt(batch)
    assert raw_got.keys() == raw_expected.keys()
    for key, value in raw_expected.items():
        assert torch.equal(raw_got[key], value), key
    got = rebuilt.predict(_image())
    assert len(got) == len(expected)
    assert torch.equal(got.boxes, expected.boxes) and torch.equal(got.labels, expected.labels)
    assert got.scores is not None and expected.scores is not None and torch.equal(got.scores, expected.scores)
    assert got.masks is not None and expected.masks is not None and torch.equal(got.masks, expected.masks)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_checkpoint_alone_rebuilds_the_model(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = _kwargs(name)
    torch.manual_seed(0)
    model = instseg.create_model(name, **kwargs)
    assert model.rebuild_kwargs.get("pretrained_backbone", False) is False
    for key, value in kwargs.items():
        assert model.rebuild_kwargs[key] == value, key
    _check_rebuild(model, name, kwargs, tmp_path, monkeypatch)


@pytest.mark.parametrize("name", PRETRAINABLE)
def test_pretrained_model_rebuilds_offline(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = {**_kwargs(name), "pretrained_backbone": True}
    torch.manual_seed(0)
    with monkeypatch.context() as fake_hub:
        fake_hub.setattr(WeightsEnum, "get_state_dict", _random_weights_of_same_architecture)
        model = instseg.create_model(name, **kwargs)
    assert model.rebuild_kwargs["pretrained_backbone"] is False  # the checkpoint carries the weights
    _check_rebuild(model, name, kwargs, tmp_path, monkeypatch)
