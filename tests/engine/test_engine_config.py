"""Configs: the recipe files load, round-trip through dicts/YAML, and reject bad values with clear messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from instseg.engine.config import Config, ModelConfig, TrainConfig
from instseg.engine.config_io import config_from_dict, config_to_dict, config_to_yaml, load_config
from instseg.registry import create_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.py")))
def test_recipe_files_load_round_trip_and_build(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    assert isinstance(cfg, Config)
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert config_from_dict(yaml.safe_load(config_to_yaml(cfg))) == cfg
    model = create_model(cfg.model.name, **cfg.model.kwargs)  # every recipe's keyword arguments reach a builder
    assert sum(p.numel() for p in model.parameters()) > 0


def test_derived_recipe_changes_only_what_it_says() -> None:
    base = load_config(CONFIGS / "base.py")
    smoke = load_config(CONFIGS / "synthetic_smoke.py")
    assert smoke.name == "synthetic_smoke" and smoke.model.name == base.model.name
    assert smoke.train.optimizer == base.train.optimizer and smoke.train.max_iters < base.train.max_iters


def test_load_config_type_checks_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from instseg.engine.config import Config, TrainConfig\nconfig = Config(train=TrainConfig(lr='x'))\n"
    )
    with pytest.raises(ValueError, match=r"bad.py: train.lr expects float"):
        load_config(bad)
    missing = tmp_path / "missing.py"
    missing.write_text("x = 1\n")
    with pytest.raises(ValueError, match=r"must define `config = Config"):
        load_config(missing)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "nope.py")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="failed to run: RuntimeError: boom"):
        load_config(broken)


def test_config_from_dict_rejects_unknown_keys_and_bad_values() -> None:
    data = config_to_dict(Config())
    data["train"]["lrr"] = 1.0
    with pytest.raises(ValueError, match=r"unknown config keys \['train.lrr'\]"):
        config_from_dict(data, "ckpt.pt")
    data = config_to_dict(Config())
    data["train"]["schedule"] = "linear"
    with pytest.raises(ValueError, match=r"train.schedule must be one of"):
        config_from_dict(data)
    data = config_to_dict(Config())
    data["train"]["max_iters"] = 0
    with pytest.raises(ValueError, match=r"train.max_iters must be >= 1"):
        config_from_dict(data)


def test_tuples_and_kwargs_survive_the_round_trip() -> None:
    cfg = Config(
        model=ModelConfig("m", {"anchor_sizes": [16, 32], "nested": {"a": 1}}),
        train=TrainConfig(steps=(10, 20), betas=(0.8, 0.9)),
    )
    back = config_from_dict(config_to_dict(cfg))
    assert back.train.steps == (10, 20) and back.train.betas == (0.8, 0.9)
    assert back.model.kwargs == {"anchor_sizes": [16, 32], "nested": {"a": 1}}
    assert dataclasses.asdict(back) == dataclasses.asdict(cfg)
