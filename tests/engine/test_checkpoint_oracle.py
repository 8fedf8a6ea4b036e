"""Checkpoint files and what they rebuild, against hand-made states: which weights a load picks, which module
names may be imported (and which never are), what a slim export keeps, and the RNG restore including CUDA."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from pixel_oracle_model import PixelOracleModel

from instseg.engine import rng
from instseg.engine.checkpoint import (
    ALLOW_MODULES_ENV,
    FORMAT,
    export_weights,
    import_model_module,
    load_checkpoint,
    model_from_state,
    save_checkpoint,
)
from instseg.engine.config import Config, DataConfig, ModelConfig
from instseg.engine.config_io import config_to_dict


def _state() -> dict[str, Any]:
    torch.manual_seed(0)
    raw = PixelOracleModel().state_dict()
    ema = {k: v + 1.0 for k, v in raw.items()}
    cfg = Config(model=ModelConfig("pixel_oracle_test", {}), data=DataConfig(train="/data/sets/nuclei", val="/v/x"))
    return {
        "step": 3,
        "config": config_to_dict(cfg),
        "model": raw,
        "ema": {"state": ema, "updates": 3, "decay": 0.9},
        "optimizer": {"state": {}, "param_groups": []},
        "rng": [rng.capture_rng_state()],
        "classes": {"category_ids": [4], "class_names": ["cell"]},
        "rebuild_kwargs": {"size_divisibility": 8},
    }


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items()}


def test_loading_picks_the_ema_weights_unless_told_or_absent() -> None:
    state = _state()
    default = model_from_state(state)
    for key, value in state["ema"]["state"].items():
        assert torch.equal(_weights(default)[key], value), key
    assert not default.training and default.size_divisibility == 8  # rebuild_kwargs win over the config's kwargs
    assert default.category_ids == [4] and default.class_names == ["cell"]
    raw = model_from_state(state, use_ema=False)
    no_ema = model_from_state({**state, "ema": None})
    for key, value in state["model"].items():
        assert torch.equal(_weights(raw)[key], value) and torch.equal(_weights(no_ema)[key], value), key
    bad = {**state, "ema": None, "model": {k: v[:1] for k, v in state["model"].items()}}
    with pytest.raises(ValueError, match=r"checkpoint mine\.pt: weights do not fit model 'pixel_oracle_test'"):
        model_from_state(bad, "mine.pt")


def test_files_round_trip_with_format_and_versions(tmp_path: Path) -> None:
    path = save_checkpoint(_state(), tmp_path / "a" / "last.pt")
    state = load_checkpoint(path)
    assert state["format"] == FORMAT and set(state["versions"]) == {"instseg", "torch"}
    assert state["step"] == 3 and state["classes"]["category_ids"] == [4]
    torch.save({"model": {}}, tmp_path / "no_config.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    for name in ("no_config.pt", "list.pt"):
        with pytest.raises(ValueError, match=rf"checkpoint {tmp_path / name} is not an instseg checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_slim_export_keeps_the_chosen_weights_and_only_data_names(tmp_path: Path) -> None:
    src = save_checkpoint(_state(), tmp_path / "last.pt")
    slim = load_checkpoint(export_weights(src, tmp_path / "slim.pt"))
    assert set(slim) == {"format", "versions", "step", "config", "rebuild_kwargs", "classes", "model", "ema"}
    assert slim["ema"] is None and slim["config"]["data"]["train"] == "nuclei" and slim["config"]["data"]["val"] == "x"
    ema = _state()["ema"]["state"]
    assert all(torch.equal(slim["model"][k], v) for k, v in ema.items())
    raw = load_checkpoint(export_weights(src, tmp_path / "raw.pt", use_ema=False, model_overrides={"num_classes": 1}))
    assert all(torch.equal(raw["model"][k], v) for k, v in _state()["model"].items())
    assert raw["config"]["model"]["kwargs"] == {"num_classes": 1}
    assert raw["rebuild_kwargs"] == {"size_divisibility": 8, "num_classes": 1}


def test_module_names_are_checked_before_anything_is_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_MODULES_ENV, raising=False)
    (tmp_path / "oracle_plugin_mod.py").write_text("import builtins\n\nbuiltins.ORACLE_PLUGIN_RAN = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "oracle_plugin_mod", raising=False)
    import_model_module(None)
    import_model_module("")
    import_model_module("json")  # already imported: nothing runs
    import_model_module("instseg.engine.rng")
    refused = ["oracle_plugin_mod", "instseg._hidden", "instseg.engine._x", "instsegx.mod", "pkgx.a"]
    for name in refused:
        with pytest.raises(ValueError, match=rf"model.module '{name}' is not part of instseg and was not allowed"):
            import_model_module(name, allow_modules=["pkg"], source="ckpt.pt")
    assert not hasattr(builtins, "ORACLE_PLUGIN_RAN")
    for bad in ("a b", "1abc", "a..b", ".a"):
        with pytest.raises(ValueError, match="is not a dotted Python module name"):
            import_model_module(bad)
    with pytest.raises(ValueError, match=r"model.module 'pkg.sub' cannot be imported"):
        import_model_module("pkg.sub", allow_modules=["pkg"])
    monkeypatch.setenv(ALLOW_MODULES_ENV, " other , oracle_plugin_mod ")
    try:
        import_model_module("oracle_plugin_mod")
        assert getattr(builtins, "ORACLE_PLUGIN_RAN", False) is True  # allowed by the environment: it ran
    finally:
        if hasattr(builtins, "ORACLE_PLUGIN_RAN"):
            delattr(builtins, "ORACLE_PLUGIN_RAN")
        sys.modules.pop("oracle_plugin_mod", None)
    with pytest.raises(ValueError, match=r"model.module 'instseg.no_such_module' cannot be imported"):
        import_model_module("instseg.no_such_module")


def test_rng_restore_puts_back_cuda_states_when_the_devices_match(monkeypatch: pytest.MonkeyPatch) -> None:
    state = rng.capture_rng_state()
    cuda = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]
    calls: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: calls.append(list(states)))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    rng.restore_rng_state({**state, "cuda": cuda})
    assert len(calls) == 1 and [int(t) for t in calls[0]] == [1, 2]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)  # another machine: the CUDA states do not fit
    rng.restore_rng_state({**state, "cuda": cuda})
    rng.restore_rng_state({**state, "cuda": []})
    assert len(calls) == 1
