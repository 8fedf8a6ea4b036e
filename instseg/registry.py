"""Whole-model registry: ``register_model`` decorates builders named ``{method}_{backbone}[_{neck}]``.

Every registered builder records, on the model it returns, the keyword arguments that rebuild the same
architecture offline (``rebuild_kwargs``, stored in checkpoints): this is the one place that does so.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}

# builder arguments that fetch weights, and their offline value: a rebuilt model gets its weights from the
# checkpoint, so nothing is downloaded (``pretrained_backbone``: ImageNet backbone; ``weights``: a whole model)
WEIGHT_SWITCHES: dict[str, Any] = {"pretrained_backbone": False, "weights": None}


def rebuild_kwargs(builder: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], model: Any) -> dict:
    """Keyword arguments that make ``builder`` rebuild ``model`` without fetching weights.

    Every parameter of ``builder`` with the value it was called with or its default (``**options`` flattened), then
    what the builder itself resolved and recorded in ``model.rebuild_kwargs`` (e.g. the norm a pretrained backbone
    implied, or the defaults of the parts it assembled: a later release that changes a default keeps old
    checkpoints' architecture), then the weight switches turned off.
    """
    signature = inspect.signature(builder)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    recorded: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            recorded.update(bound.arguments.get(name, {}))
        elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
            recorded[name] = bound.arguments[name]
    recorded.update(getattr(model, "rebuild_kwargs", None) or {})
    recorded.update({k: v for k, v in WEIGHT_SWITCHES.items() if k in recorded})
    return recorded


def register_model(builder: Builder) -> Builder:
    """Register a builder function under its own name; the name is what users pass to ``create_model``.

    The registered (and returned) function records ``rebuild_kwargs`` on every model it builds.
    """
    name = builder.__name__
    if name in _MODELS and getattr(_MODELS[name], "__wrapped__", None) is not builder:
        raise ValueError(f"model {name!r} is registered twice")

    @functools.wraps(builder)
    def build_and_record(*args: Any, **kwargs: Any) -> nn.Module:
        model = builder(*args, **kwargs)
        model.rebuild_kwargs = rebuild_kwargs(builder, args, kwargs, model)  # type: ignore[assignment]
        return model

    _MODELS[name] = build_and_record
    return build_and_record  # type: ignore[return-value]


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
