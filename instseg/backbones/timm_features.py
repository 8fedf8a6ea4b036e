"""Any timm model created with ``features_only=True`` as a backbone (timm is an optional dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from instseg.backbones.backbone import Backbone


def import_timm() -> Any:
    """Import timm, or raise ModuleNotFoundError saying how to install it (it is an optional extra)."""
    try:
        import timm
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "timm backbones need the optional package timm; "
            "install it with `pip install timm` (or `pip install instseg[timm]`)",
            name="timm",
        ) from err
    return timm


class TimmBackbone(Backbone):
    """A timm ``features_only`` model; levels, channels and strides come from its ``feature_info``.

    ``forward(Tensor[B, 3, H, W]) -> {"c2", ...}``: level names are ``c{log2(stride)}`` so a stride-8 map is
    ``c3`` whatever the network. ``out_indices`` picks timm's feature levels (default: the last four, which for
    most CNNs are strides 4..32; negative indices count from the end, as timm >= 1.0 allows). Norm layers stay
    timm's (trainable BatchNorm for most CNNs); pass ``norm_layer=...`` through ``timm_kwargs`` where accepted.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        out_indices: Sequence[int] | None = None,
        **timm_kwargs: Any,
    ) -> None:
        timm = import_timm()
        indices = tuple(out_indices) if out_indices is not None else (-4, -3, -2, -1)  # negative: from the end
        try:
            net = timm.create_model(name, features_only=True, pretrained=pretrained, out_indices=indices, **timm_kwargs)
        except RuntimeError as err:  # timm raises RuntimeError for unknown model names
            raise ValueError(f"timm cannot build {name!r} with features_only: {err}") from err
        channels = [int(c) for c in net.feature_info.channels()]
        strides = [int(s) for s in net.feature_info.reduction()]
        names = [f"c{max(1, s.bit_length() - 1)}" for s in strides]
        if len(set(names)) != len(names):  # e.g. two levels at one stride in some transformers
            names = [f"c{i}" for i in range(len(strides))]
        super().__init__(names, channels, strides)
        self.name = name
        self.body: nn.Module = net

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Feature maps of Tensor[B, 3, H, W] images, one per ``feature_names`` entry."""
        feats = self.body(x)
        return dict(zip(self.feature_names, feats, strict=True))
