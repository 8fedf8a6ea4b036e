"""Whole-model registry: ``register_model`` decorates builders named ``{method}_{backbone}[_{neck}]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(builder: Builder) -> Builder:
    """Register a builder function under its own name; the name is what users pass to ``create_model``."""
    name = builder.__name__
    if name in _MODELS and _MODELS[name] is not builder:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = builder
    return builder


def _import_methods() -> None:
    """Import every method package so that its builders register themselves."""
    import instseg.methods  # noqa: F401  (side effect: registration)


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted; ``pattern`` keeps names containing it."""
    _import_methods()
    names = sorted(_MODELS)
    return [n for n in names if pattern is None or pattern in n]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name; keyword arguments go to its builder."""
    _import_methods()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS)) or '(none)'}")
    return _MODELS[name](**kwargs)
