"""Fine-tuning starts: weights copied by name and shape from a checkpoint, the rest kept as built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from instseg.engine.checkpoint import default_weights_path, load_checkpoint, save_checkpoint
from instseg.engine.config import Config, ModelConfig
from instseg.engine.config_io import config_to_dict
from instseg.engine.init_weights import initialize_from, resolve_init_path
from instseg.registry import create_model


def _watershed(num_classes: int = 1, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("watershed_unet", num_classes=num_classes, base_channels=4, depth=2)


def _save(model: torch.nn.Module, path: Path, ema: dict | None = None) -> Path:
    cfg = Config(model=ModelConfig("watershed_unet", {"base_channels": 4, "depth": 2}))
    return save_checkpoint({"config": config_to_dict(cfg), "model": model.state_dict(), "ema": ema}, path)


def test_same_architecture_gets_every_tensor(tmp_path: Path) -> None:
    source, target = _watershed(seed=1), _watershed(seed=2)
    report = initialize_from(target, str(_save(source, tmp_path / "a.pt")))
    assert not report.shape_mismatch and not report.not_in_file
    assert len(report.loaded) == len(source.state_dict())
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name
    assert "initialised" in report.summary() and "kept as built" not in report.summary()


def test_another_class_count_keeps_only_the_class_logits_as_built(tmp_path: Path) -> None:
    source, target = _watershed(num_classes=1, seed=1), _watershed(num_classes=3, seed=2)
    built = {k: v.clone() for k, v in target.state_dict().items()}
    report = initialize_from(target, str(_save(source, tmp_path / "a.pt")))
    own, given = target.state_dict(), source.state_dict()
    assert report.shape_mismatch or report.not_in_file  # the 3-class model has class logits the file lacks
    for name in own:
        if name in report.loaded:
            assert torch.equal(own[name], given[name]), name
        else:
            assert torch.equal(own[name], built[name]), name
    assert "kept as built" in report.summary()


def test_ema_weights_are_preferred(tmp_path: Path) -> None:
    source = _watershed(seed=1)
    averaged = {k: v + 1 if v.is_floating_point() else v for k, v in source.state_dict().items()}
    path = _save(source, tmp_path / "ema.pt", ema={"state": averaged, "updates": 5, "decay": 0.9})
    target = _watershed(seed=2)
    initialize_from(target, str(path))
    name = next(k for k, v in averaged.items() if v.is_floating_point())
    assert torch.equal(target.state_dict()[name], averaged[name])
    initialize_from(target, str(path), use_ema=False)
    assert torch.equal(target.state_dict()[name], source.state_dict()[name])


def test_unfitting_unreadable_and_missing_files_name_the_file(tmp_path: Path) -> None:
    other = create_model("yolact_light_mobilenetv3", num_classes=1)
    with pytest.raises(ValueError, match=r"other\.pt: none of its weights fits"):
        initialize_from(_watershed(), str(_save(other, tmp_path / "other.pt")))
    with pytest.raises(ValueError, match=r"nothere\.pt does not exist"):
        initialize_from(_watershed(), str(tmp_path / "nothere.pt"))

    class Payload:  # a pickle that would run code on load: weights_only refuses it
        def __reduce__(self) -> tuple:
            return (print, ("ran",))

    torch.save({"model": Payload(), "config": {}}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil\.pt cannot be read"):
        initialize_from(_watershed(), str(tmp_path / "evil.pt"))


def test_default_names_the_shipped_model() -> None:
    assert resolve_init_path("default") == default_weights_path()
    shipped = load_checkpoint(default_weights_path())
    model = create_model(shipped["config"]["model"]["name"], **shipped["config"]["model"]["kwargs"])
    report = initialize_from(model, "default")
    assert not report.shape_mismatch and not report.not_in_file
