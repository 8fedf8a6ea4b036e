"""Bottom-up models (watershed, pixel embeddings, spatial embeddings): the network in the graph, up to per-pixel
maps at the original image size; their grouping runs in numpy (``instseg_runtime.grouping``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import resample, size_tensor
from instseg.methods.segmenter import InstanceSegmenter

# each family's maps, in output order, and the head output they come from: (name, key, activation)
FAMILY_MAPS: dict[str, list[tuple[str, str, str]]] = {
    "watershed": [("fg_prob", "fg_logits", "sigmoid"), ("distance", "distance", "none")],
    "embedding": [
        ("embedding", "embedding", "none"),
        ("fg_prob", "fg_logits", "sigmoid"),
        ("seed_prob", "seed_logits", "sigmoid"),
    ],
    "spatial_embedding": [("embedding", "embedding", "none"), ("sigma", "sigma", "none"), ("seed", "seed", "none")],
}
# the grouping parameters each family's post-processor carries (its constructor arguments)
GROUPING_KEYS: dict[str, tuple[str, ...]] = {
    "watershed": ("fg_threshold", "seed_threshold", "seed_method", "min_distance", "min_area", "score_threshold"),
    "embedding": ("fg_threshold", "seed_threshold", "margin", "min_area", "score_threshold", "max_instances"),
    "spatial_embedding": (
        "fg_threshold",
        "seed_threshold",
        "min_area",
        "min_unclustered",
        "max_instances",
        "max_proposals",
    ),
}
SQUEEZED = {"fg_prob", "distance", "seed_prob"}  # single-channel maps are exported as [H, W]


class DenseGraph(ExportGraph):
    """``forward(image, original_size)`` -> the family's maps (``FAMILY_MAPS``) of every image of the batch, cropped
    to the image and resampled bilinearly to ``original_size``, as the eager post-processors do before grouping
    (Tensor[B, C, H, W], single-channel maps Tensor[B, H, W]); watershed and embedding models with several
    classes add ``class_prob`` Tensor[B, K, H, W] (softmax of ``class_logits``)."""

    def __init__(self, model: InstanceSegmenter, family: str, with_classes: bool) -> None:
        super().__init__(model)
        self.family = family
        self.maps = list(FAMILY_MAPS[family])
        if with_classes:
            self.maps.append(("class_prob", "class_logits", "softmax"))
        self.output_names = [name for name, _, _ in self.maps]

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        model: Any = self.model
        outputs = model.head(model.network(self.normalized(image)))  # DenseSegmenter.forward's two steps
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        oh, ow = original_size[0], original_size[1]
        scale_y, scale_x = h.float() / oh.float(), w.float() / ow.float()
        results = []
        for name, key, activation in self.maps:
            x = outputs[key][:, :, :h, :w].float()  # [B, C, h, w]
            if activation == "sigmoid":
                x = x.sigmoid()
            elif activation == "softmax":
                x = x.softmax(dim=1)
            x = resample(x.flatten(0, 1), oh, ow, scale_y, scale_x)  # [B C, oh, ow]
            x = x.unflatten(0, (-1, outputs[key].shape[1]))  # [B, C, oh, ow]
            results.append(x[:, 0] if name in SQUEEZED else x)
        return tuple(results)

    def grouping_params(self) -> dict[str, object]:
        post = self.model.postprocessor  # type: ignore[union-attr]
        return {key: getattr(post, key) for key in GROUPING_KEYS[self.family]}
