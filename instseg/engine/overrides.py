"""``--set section.field=value`` overrides, typed by the config dataclasses' own field types."""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

from instseg.engine.config import Config, validate_config
from instseg.engine.config_io import coerce_value, field_hints


def parse_override(text: str) -> tuple[str, str]:
    """Split ``"train.lr=0.01"`` into ``("train.lr", "0.01")``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set expects KEY=VALUE (e.g. train.lr=0.01), got {text!r}")
    return key, value.strip()


def _parse_text(text: str) -> Any:
    """YAML reading of a value (numbers, booleans, null, [lists], {mappings}); plain text when YAML fails."""
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """A copy of ``cfg`` with each ``KEY=VALUE`` applied; values are converted to the field's type.

    Keys walk the dataclasses (``train.lr``, ``data.train_min_sizes=[320,384]``); inside a free-form mapping
    (``model.kwargs``) the rest of the key names a mapping entry
    (``model.kwargs.num_classes=3``) whose value is read as YAML. Unknown keys raise ``ValueError`` listing the
    valid ones (with a close match when there is one).
    """
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        key, raw = parse_override(text)
        _apply_one(cfg, key, raw, text)
    validate_config(cfg, "--set")
    return cfg


def _apply_one(cfg: Config, key: str, raw: str, text: str) -> None:
    parts = key.split(".")
    node: Any = cfg
    for depth, name in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, dict):  # free-form mapping: the rest of the key is one entry, possibly nested
            for inner in parts[depth:-1]:
                node = node.setdefault(inner, {})
                if not isinstance(node, dict):
                    raise ValueError(f"--set {text!r}: {inner!r} is not a mapping")
            node[parts[-1]] = _parse_text(raw)
            return
        if not dataclasses.is_dataclass(node):
            raise ValueError(f"--set {text!r}: {'.'.join(parts[:depth])} is a value, not a section")
        hints = field_hints(type(node))
        if name not in hints:
            close = difflib.get_close_matches(name, list(hints), n=1)
            hint = f" (did you mean {'.'.join([*parts[:depth], close[0]])}?)" if close else ""
            raise ValueError(f"--set {text!r}: unknown config key {path!r}{hint}; valid here: {sorted(hints)}")
        if last:
            hint_type = hints[name]
            if dataclasses.is_dataclass(hint_type):
                raise ValueError(f"--set {text!r}: {path!r} is a section; set one of its fields, e.g. {path}.FIELD=...")
            try:
                value = coerce_value(_parse_text(raw), hint_type, path, "--set")
            except ValueError:  # e.g. a str field given "123": keep the text as typed
                value = coerce_value(raw, hint_type, path, "--set")
            setattr(node, name, value)
            return
        node = getattr(node, name)
