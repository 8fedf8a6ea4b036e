"""The star-convex model in the graph up to its per-pixel maps at the original image size; its polygon NMS runs in
numpy (``instseg_runtime.star_convex``), like the grouping of the other bottom-up models."""

from __future__ import annotations

from torch import Tensor

from instseg.export.graph_io import ExportGraph
from instseg.export.graph_ops import resample, size_tensor
from instseg.methods.star_convex import StarConvexSegmenter

# the post-processor's parameters the runtime's polygon NMS takes (its constructor arguments)
GROUPING_KEYS = (
    "prob_threshold",
    "nms_threshold",
    "min_area",
    "max_candidates",
    "max_detections",
    "candidate_stride",
    "skip_covered",
)


class StarConvexGraph(ExportGraph):
    """``forward(image, original_size)`` -> ``prob`` Tensor[B, H, W] (sigmoid of ``prob_logits``), ``distances``
    Tensor[B, n, H, W] and, with several classes, ``class_prob`` Tensor[B, K, H, W]: cropped to the image and
    resampled bilinearly to ``original_size``, the distances multiplied by the mean of the two axes' scale
    factors (pixels of the original image), as ``StarConvexPostprocessor.original_maps`` does."""

    family = "star_convex"

    def __init__(self, model: StarConvexSegmenter) -> None:
        super().__init__(model)
        self.with_classes = model.num_classes > 1
        self.output_names = ["prob", "distances"] + (["class_prob"] if self.with_classes else [])

    def forward(self, image: Tensor, original_size: Tensor) -> tuple[Tensor, ...]:
        m: StarConvexSegmenter = self.model  # type: ignore[assignment]
        outputs = m.head(m.network(self.normalized(image)))  # DenseSegmenter.forward's two steps
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        oh, ow = original_size[0], original_size[1]
        scale_y, scale_x = h.float() / oh.float(), w.float() / ow.float()

        def at_original(x: Tensor) -> Tensor:  # Tensor[B, C, h', w'] -> Tensor[B, C, oh, ow]
            y = resample(x[:, :, :h, :w].float().flatten(0, 1), oh, ow, scale_y, scale_x)
            return y.unflatten(0, (-1, x.shape[1]))

        prob = at_original(outputs["prob_logits"].sigmoid())[:, 0]
        distances = at_original(outputs["distances"]) * ((oh.float() / h.float() + ow.float() / w.float()) / 2.0)
        results = [prob, distances]
        if self.with_classes:
            results.append(at_original(outputs["class_logits"].softmax(dim=1)))
        return tuple(results)

    def grouping_params(self) -> dict[str, object]:
        post = self.model.postprocessor  # type: ignore[union-attr]
        return {key: getattr(post, key) for key in GROUPING_KEYS}
