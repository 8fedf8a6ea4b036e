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
    ``backbone_name`` (norm and trainable stages by ``backbone_choices``). The resolved choices and every
    keyword-only default of ``assemble`` go into ``rebuild_kwargs`` (completed by ``register_model``), so that a
    checkpoint keeps its architecture offline and when a later version changes a default."""
    choices = backbone_choices(pretrained_backbone, norm, trainable_layers)
    backbone: Backbone = build_backbone(backbone_name, pretrained=pretrained_backbone, **choices)
    model = assemble(backbone, num_classes, min_size, max_size, **options)
    model.rebuild_kwargs = {**choices, **keyword_defaults(assemble), **options}  # the registry adds the rest
    return model


def keyword_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` that have defaults, with those defaults."""
    return {
        name: param.default
        for name, param in inspect.signature(function).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is not inspect.Parameter.empty
    }
