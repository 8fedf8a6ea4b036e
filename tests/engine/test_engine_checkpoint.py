"""Checkpoints: atomic writes, weights_only loading of the whole state (RNG included), model rebuild."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import tiny_fg_model  # noqa: F401  (registers tiny_fg_test)
import torch

from instseg.engine.checkpoint import export_weights, load_checkpoint, load_model, save_checkpoint
from instseg.engine.config import Config, ModelConfig
from instseg.engine.config_io import config_to_dict
from instseg.engine.ema import ModelEMA
from instseg.engine.rng import capture_rng_state, restore_rng_state
from instseg.registry import create_model


def _state(model: torch.nn.Module, ema: ModelEMA | None = None) -> dict:
    cfg = Config(model=ModelConfig("tiny_fg_test", {"num_classes": 1, "hidden": 4}, module="tiny_fg_model"))
    return {
        "step": 3,
        "config": config_to_dict(cfg),
        "model": model.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng": [capture_rng_state()],
        "classes": {"category_ids": [7], "class_names": ["cell"]},
    }


def test_rng_state_survives_weights_only_and_restores_exactly(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    path = save_checkpoint({"rng": [capture_rng_state()], "model": {}, "config": {}}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(2))
    restore_rng_state(load_checkpoint(path)["rng"][0])
    got = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(2))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_model("tiny_fg_test", num_classes=1, hidden=4)
    path = save_checkpoint(_state(model), tmp_path / "last.pt")
    good = path.read_bytes()

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_state(model), path)
    assert path.read_bytes() == good  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_load_model_rebuilds_from_the_stored_config_with_ema_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("tiny_fg_test", num_classes=1, hidden=4)
    ema = ModelEMA(model, 0.5)
    with torch.no_grad():
        for p in ema.module.parameters():
            p.fill_(0.25)
    path = save_checkpoint(_state(model, ema), tmp_path / "ckpt.pt")
    loaded = load_model(path)
    assert type(loaded).__name__ == "TinyFgSegmenter" and not loaded.training
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), ema.module.state_dict().values(), strict=True)
    )
    raw = load_model(path, use_ema=False)
    assert all(torch.equal(a, b) for a, b in zip(raw.state_dict().values(), model.state_dict().values(), strict=True))
    assert loaded.category_ids == [7] and loaded.class_names == ["cell"]
    full = load_checkpoint(path)
    full["config"]["data"]["train"] = str(tmp_path / "sets" / "nuclei")
    save_checkpoint(full, path)
    slim = export_weights(path, tmp_path / "slim.pt")
    state = load_checkpoint(slim)
    assert state["ema"] is None and "rng" not in state
    assert state["config"]["data"]["train"] == "nuclei"  # the data set's name, not where it lay
    assert all(
        torch.equal(a, b)
        for a, b in zip(load_model(slim).state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def test_bad_checkpoints_raise_value_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk.pt cannot be read"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match=r"other.pt is not an instseg checkpoint"):
        load_checkpoint(other)
    model = create_model("tiny_fg_test", num_classes=1, hidden=4)
    state = _state(model)
    state["config"]["model"]["kwargs"]["hidden"] = 6
    wrong = save_checkpoint(state, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match=r"wrong.pt: weights do not fit model 'tiny_fg_test'"):
        load_model(wrong)


def test_export_overrides_reach_the_recorded_rebuild_kwargs(tmp_path: Path) -> None:
    model = create_model("tiny_fg_test", num_classes=1, hidden=4)
    state = _state(model)
    state["rebuild_kwargs"] = {"num_classes": 1, "hidden": 4, "nan_at_call": None}  # as builders record them
    path = save_checkpoint(state, tmp_path / "ckpt.pt")
    slim = export_weights(path, tmp_path / "slim.pt", model_overrides={"nan_at_call": 7})
    # the recorded kwargs win over the config when rebuilding, so an override must change both
    assert load_model(slim).nan_at_call == 7
