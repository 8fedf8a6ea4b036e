"""Load configs from Python files, convert them to/from plain dicts (checkpoints) and YAML (run folders)."""

from __future__ import annotations

import dataclasses
import importlib.util
import types
import typing
from pathlib import Path
from typing import Any

from instseg.engine.config import Config, validate_config

_NONE_WORDS = ("none", "null", "~")


def load_config(path: str | Path) -> Config:
    """Execute a Python config file and return the ``Config`` it binds to the name ``config``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    module_name = f"instseg_config_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"config file {path} cannot be loaded as Python (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ValueError(f"config file {path} failed to run: {type(err).__name__}: {err}") from err
    cfg = getattr(module, "config", None)
    if not isinstance(cfg, Config):
        raise ValueError(f"config file {path} must define `config = Config(...)`, found {type(cfg).__name__}")
    # The round trip through a plain dict checks every field's type and gives the exact form checkpoints store.
    return config_from_dict(config_to_dict(cfg), str(path))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict of the config (tuples become lists): YAML- and ``weights_only``-checkpoint friendly."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(cfg))


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Rebuild a ``Config`` from ``config_to_dict`` output; unknown keys and ill-typed values raise ``ValueError``."""
    cfg = _build_dataclass(Config, _without_legacy_sizes(data), "", source)
    validate_config(cfg, source)
    return cfg


def _without_legacy_sizes(data: Any) -> Any:
    """Configs of instseg <= 0.1 stated the image size twice (``data.min_size``/``max_size`` beside the model's);
    the model's rule wins, so the data copy is dropped (moved into ``model.kwargs`` where the model had none)."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        return data
    legacy = {k: data["data"][k] for k in ("min_size", "max_size") if k in data["data"]}
    if not legacy:
        return data
    model = dict(data.get("model") or {})
    kwargs = model.get("kwargs")
    if isinstance(kwargs, dict):
        model["kwargs"] = {**legacy, **kwargs}
    rest = {k: v for k, v in data["data"].items() if k not in legacy}
    return {**data, "data": rest, "model": model}


def config_to_yaml(cfg: Config) -> str:
    """The config as YAML text (what ``config.yaml`` in a run folder holds)."""
    import yaml

    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config_yaml(cfg: Config, path: str | Path) -> None:
    """Write the resolved config next to a run's checkpoints, so a reader sees exactly what was trained."""
    Path(path).write_text(config_to_yaml(cfg))


def field_hints(cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass's fields (the annotations are strings under PEP 563)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _build_dataclass(cls: type, data: Any, prefix: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = field_hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ValueError(f"{source}: unknown config keys {[prefix + k for k in unknown]}; known: {sorted(hints)}")
    values = {name: coerce_value(value, hints[name], prefix + name, source) for name, value in data.items()}
    return cls(**values)


def coerce_value(value: Any, hint: Any, key: str, source: str = "config") -> Any:
    """Convert ``value`` (from YAML, a checkpoint or a ``--set`` string) to the field type ``hint`` or raise."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    fault = f"{source}: {key} expects {_type_name(hint)}, got {value!r}"
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in _NONE_WORDS)):
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce_value(value, option, key, source)
            except ValueError:
                continue
        raise ValueError(fault)
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"{source}: {key} must be one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, key + ".", source)  # type: ignore[arg-type]
    if origin is tuple:
        items = list(value) if isinstance(value, list | tuple) else [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce_value(v, args[0], key, source) for v in items)
        if len(items) != len(args):
            raise ValueError(fault)
        return tuple(coerce_value(v, a, key, source) for v, a in zip(items, args, strict=True))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(fault)
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ValueError(fault)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ValueError(fault)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(fault)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError(fault)
    raise ValueError(f"{source}: {key} has an unsupported field type {_type_name(hint)}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
