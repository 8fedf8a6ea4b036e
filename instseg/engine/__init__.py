"""Training engine: typed configs, the plain training loop, checkpoints with exact resume, DDP and evaluation.

The config dataclasses are imported eagerly (config files import them); the rest loads on first use so that
reading a config does not pull in the data, evaluation and plotting stacks.
"""

from __future__ import annotations

import importlib
from typing import Any

from instseg.engine.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig

_LAZY = {
    "load_config": "instseg.engine.config_io",
    "config_to_dict": "instseg.engine.config_io",
    "config_from_dict": "instseg.engine.config_io",
    "apply_overrides": "instseg.engine.overrides",
    "Trainer": "instseg.engine.trainer",
    "NonFiniteLossError": "instseg.engine.trainer",
    "train_from_config": "instseg.engine.launch",
    "save_checkpoint": "instseg.engine.checkpoint",
    "load_checkpoint": "instseg.engine.checkpoint",
    "load_model": "instseg.engine.checkpoint",
    "evaluate_model": "instseg.engine.evaluate",
    "evaluate_checkpoint": "instseg.engine.evaluate",
}

__all__ = ["Config", "DataConfig", "EvalConfig", "ModelConfig", "TrainConfig", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'instseg.engine' has no attribute {name!r}")
