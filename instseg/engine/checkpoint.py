"""Checkpoints: atomic save of the whole training state, safe loading, and rebuilding a model from a file alone.

A checkpoint is a dict of tensors and plain Python values (loadable with ``torch.load(weights_only=True)``):
  - ``format``: ``"instseg-checkpoint/1"``; ``step``: optimiser steps done; ``config``: the resolved config dict;
  - ``model``: ``state_dict`` of the raw model; ``ema``: ``{"state", "updates", "decay"}`` or ``None``;
  - ``optimizer``, ``scheduler``, ``scaler``: their ``state_dict``s (absent in weights-only files);
  - ``rng``: one ``capture_rng_state()`` per rank; ``data``: the batch stream's ``{"epoch", "batches_done"}``;
  - ``metrics``: the last evaluation; ``best``: ``{"metric", "value", "step"}``;
  - ``classes``: ``{"category_ids", "class_names"}`` of the training data (what predictions are labelled with);
  - ``rebuild_kwargs``: builder kwargs that rebuild the architecture without downloading pretrained weights;
  - ``versions``: instseg and torch versions that wrote it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instseg.data.atomic_files import write_atomic
from instseg.engine.config import Config
from instseg.engine.config_io import config_from_dict

FORMAT = "instseg-checkpoint/1"
DEFAULT_WEIGHTS = "default.pt"  # file name of the shipped default model inside ``instseg/weights/``
ALLOW_MODULES_ENV = "INSTSEG_ALLOW_MODULES"  # comma-separated modules a checkpoint's model.module may import
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically: a temporary file in the same folder, flushed to disk, then ``os.replace``.

    A crash mid-write therefore never leaves a truncated ``last.pt``/``best.pt`` behind, and the temporary file a
    killed writer left (``.last.pt.tmp-<pid>``) is removed by the next save (``instseg.data.atomic_files``).
    """
    state = {"format": FORMAT, "versions": _versions(), **state}
    return write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code runs); bad files raise ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} cannot be read: {type(err).__name__}: {err}") from err
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {path} is not an instseg checkpoint (needs 'model' and 'config' entries)")
    return state


def checkpoint_config(state: dict[str, Any], source: str = "checkpoint") -> Config:
    """The ``Config`` stored in a loaded checkpoint."""
    return config_from_dict(state["config"], source)


def _allowed_by_user(module: str, allow_modules: Sequence[str]) -> bool:
    """Whether ``module`` is one of (or inside one of) the modules the caller or ``INSTSEG_ALLOW_MODULES`` allow."""
    from_env = [m.strip() for m in os.environ.get(ALLOW_MODULES_ENV, "").split(",") if m.strip()]
    return any(module == a or module.startswith(a + ".") for a in [*allow_modules, *from_env])


def import_model_module(module: str | None, allow_modules: Sequence[str] = (), source: str = "config") -> None:
    """Import ``model.module`` (a package registering extra models) before ``create_model`` looks the name up.

    A module name read from a file must never make Python run code the user did not choose, so the name is
    checked before anything is imported: a module already imported is a no-op; otherwise it must be a public
    module of the ``instseg`` package, or be named (itself or a package above it) in ``allow_modules`` or in the
    comma-separated environment variable ``INSTSEG_ALLOW_MODULES``. Anything else raises ``ValueError``.
    """
    if module is None or module == "":
        return
    if not isinstance(module, str) or not _MODULE_NAME.fullmatch(module):
        raise ValueError(f"{source}: model.module {module!r} is not a dotted Python module name")
    if module in sys.modules:
        return  # already imported: importing it again runs nothing
    ours = module.split(".")[0] == "instseg" and not any(part.startswith("_") for part in module.split("."))
    if not ours and not _allowed_by_user(module, allow_modules):
        raise ValueError(
            f"{source}: model.module {module!r} is not part of instseg and was not allowed; importing it would run "
            f"its code. If you trust it, pass allow_modules=[{module!r}] or set {ALLOW_MODULES_ENV}={module}"
        )
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"{source}: model.module {module!r} cannot be imported: {err}") from err


def build_model(cfg: Config, allow_modules: Sequence[str] = (), source: str = "config") -> nn.Module:
    """Create the configured model through the registry (after importing ``model.module`` if set and allowed)."""
    from instseg.registry import create_model

    import_model_module(cfg.model.module, allow_modules, source)
    return create_model(cfg.model.name, **cfg.model.kwargs)


def default_weights_path() -> Path:
    """Where the shipped default model lives (``instseg/weights/default.pt``)."""
    return Path(__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS


def load_model(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    allow_modules: Sequence[str] = (),
) -> nn.Module:
    """Rebuild the model a checkpoint was trained as (from its stored config) and load its weights, in eval mode.

    The EMA weights are used when the checkpoint has them (unless ``use_ema=False``); ``path=None`` loads the
    shipped default model. The model gets ``class_names`` and ``category_ids`` attributes from the training data,
    so that predictions can be written with the data set's category ids. A checkpoint whose ``model.module``
    names code outside instseg loads only when that module is in ``allow_modules`` (see ``import_model_module``).
    """
    if path is None:
        path = default_weights_path()
        if not path.is_file():
            raise ValueError(f"no checkpoint given and the default model {path} is not installed")
    return model_from_state(load_checkpoint(path), str(path), device, use_ema, allow_modules)


def model_from_state(
    state: dict[str, Any],
    source: str = "checkpoint",
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    allow_modules: Sequence[str] = (),
) -> nn.Module:
    """``load_model`` for a checkpoint dict already read with ``load_checkpoint``."""
    cfg = checkpoint_config(state, source)
    # builders that fetch pretrained weights record kwargs that rebuild the same architecture offline
    cfg.model.kwargs = {**cfg.model.kwargs, **(state.get("rebuild_kwargs") or {})}
    model = build_model(cfg, allow_modules, f"checkpoint {source}")
    weights = state["ema"]["state"] if use_ema and state.get("ema") else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {source}: weights do not fit model {cfg.model.name!r}: {err}") from err
    classes = state.get("classes") or {}
    model.class_names = classes.get("class_names")  # type: ignore[assignment]
    model.category_ids = classes.get("category_ids")  # type: ignore[assignment]
    return model.to(device).eval()


def export_weights(
    checkpoint: str | Path, out: str | Path, use_ema: bool = True, model_overrides: dict[str, Any] | None = None
) -> Path:
    """A slim copy of a checkpoint for inference (config, classes and weights; no optimiser, RNG or EMA copy).

    ``model_overrides`` replace builder keyword arguments in the stored config (e.g. post-processing thresholds
    chosen after training); they must not change the weights' shapes. The data set locations of the training
    config (and the file it was initialised from) are cut to their last path component: a shared weights file names
    its data, not the trainer's disks.
    """
    state = load_checkpoint(checkpoint)
    data = state["config"].get("data") or {}
    for key in ("train", "images", "val", "val_images"):
        if data.get(key):
            data[key] = Path(str(data[key])).name
    train = state["config"].get("train") or {}
    if train.get("init_weights"):
        train["init_weights"] = Path(str(train["init_weights"])).name
    if model_overrides:
        state["config"]["model"]["kwargs"] = {**state["config"]["model"]["kwargs"], **model_overrides}
        if state.get("rebuild_kwargs"):  # they take precedence over the config when the model is rebuilt
            state["rebuild_kwargs"] = {**state["rebuild_kwargs"], **model_overrides}
    weights = state["ema"]["state"] if use_ema and state.get("ema") else state["model"]
    keep: dict[str, Any] = {
        k: state[k] for k in ("step", "config", "rebuild_kwargs", "metrics", "best", "classes") if k in state
    }
    return save_checkpoint({**keep, "model": weights, "ema": None}, out)


def _versions() -> dict[str, str]:
    from instseg import __version__

    return {"instseg": str(__version__), "torch": str(torch.__version__)}  # TorchVersion is not weights_only-safe
