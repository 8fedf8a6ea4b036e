"""Build a method on a torchvision backbone and record how to rebuild it offline (shared by the method builders)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from instseg.backbones import Backbone, backbone_choices, build_backbone
from instseg.methods.segmenter import InstanceSegmenter

Model = TypeVar("Model", bound=InstanceSegmenter)


def build_on_torchvision_backbone(
    assemble: Callable[..., Model],
    backbone_name: str,
    num_classes: int,
    min_size: int | None,
    max_size: int | None,
    pretrained_backbone: bool,
    norm: str | None,
    trainable_layers: int | None,
    options: dict[str, Any],
) -> Model:
    """``assemble(backbone, num_classes, min_size, max_size, **options)`` on the torchvision backbone
    ``backbone_name`` (norm and trainable stages by ``backbone_choices``), with ``rebuild_kwargs`` recorded: the
    builder keyword arguments that rebuild the same architecture without fetching weights, so that a checkpoint
    loads on a machine without internet. Every keyword-only default of ``assemble`` is recorded too, so that a
    checkpoint keeps its architecture when a later version changes a default."""
    choices = backbone_choices(pretrained_backbone, norm, trainable_layers)
    backbone: Backbone = build_backbone(backbone_name, pretrained=pretrained_backbone, **choices)
    model = assemble(backbone, num_classes, min_size, max_size, **options)
    model.rebuild_kwargs = {  # type: ignore[assignment]
        "num_classes": num_classes,
        "min_size": min_size,
        "max_size": max_size,
        "pretrained_backbone": False,
        **choices,
        **keyword_defaults(assemble),
        **options,
    }
    return model


def keyword_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` that have defaults, with those defaults."""
    return {
        name: param.default
        for name, param in inspect.signature(function).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is not inspect.Parameter.empty
    }
