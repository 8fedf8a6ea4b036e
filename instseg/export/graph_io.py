"""The exported graph's inputs and the base of the per-family wrappers (see ``README.md`` for the layout)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from instseg.export.graph_ops import pad_to_multiple, size_tensor
from instseg.methods.segmenter import InstanceSegmenter

INPUT_NAMES = ["image", "original_size"]
DETECTION_OUTPUTS = ["boxes", "scores", "labels", "masks", "batch_index"]
# ``instseg.ops.intensity.percentile_normalize``'s defaults, which the dense models use
PERCENTILE_SAMPLES = 1 << 16
PERCENTILE_EPS = 1e-3


class ExportGraph(nn.Module):
    """Tensor-only module traced into ONNX: ``forward(image, original_size) -> tuple of outputs``.

    ``image`` is Tensor[B, 3, h, w] float32, raw 0..255 pixels of B images of one size, already resized by the
    model's rule (unpadded); ``original_size`` Tensor[2] int64 is ``(height, width)`` of the images as the user
    gave them, the frame every output is in. Subclasses set ``family`` and ``output_names`` and implement ``forward``.
    """

    family = ""
    batchable = True  # whether the traced graph keeps the batch dimension free

    def __init__(self, model: InstanceSegmenter) -> None:
        super().__init__()
        self.model = model
        self.output_names: list[str] = list(DETECTION_OUTPUTS)

    def normalized(self, image: Tensor) -> Tensor:
        """Tensor[B, 3, H, W]: ``image`` zero-padded to the model's ``size_divisibility`` and normalised by its rule
        (``InstanceSegmenter.normalize``, then the per-image percentiles of the dense models), written with masks
        and traced sizes.

        The eager rule zeroes the padding by slice assignment and reads the percentile ranks as Python ints, which
        a trace freezes into one image size; this is the same arithmetic (tests compare the two).
        """
        m = self.model
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        x = (pad_to_multiple(image, m.size_divisibility).float() - m.pixel_mean) / m.pixel_std
        rows = torch.arange(size_tensor(x, 2))[:, None] < h  # type: ignore[call-overload]  # a traced size when exporting
        cols = torch.arange(size_tensor(x, 3))[None, :] < w  # type: ignore[call-overload]  # a traced size when exporting
        valid = (rows & cols).to(x.dtype)  # [H, W]
        x = x * valid
        percentiles = getattr(m, "percentiles", None)
        if percentiles is None:
            return x
        flat = x[:, :, :h, :w].flatten(1)  # [B, 3 h w]: each image's own percentiles
        n = size_tensor(flat, 1)
        step = torch.clamp(n // PERCENTILE_SAMPLES, min=1)
        flat = flat[:, torch.arange(0, n, step)]  # type: ignore[call-overload]  # a traced size when exporting
        last = (size_tensor(flat, 1) - 1).float()
        ordered = flat.sort(dim=1).values
        lo = ordered[:, torch.round(last * (percentiles[0] / 100.0)).long()][:, None, None, None]
        hi = ordered[:, torch.round(last * (percentiles[1] / 100.0)).long()][:, None, None, None]
        return (x - lo) / (hi - lo).clamp(min=PERCENTILE_EPS) * valid

    def grouping_params(self) -> dict[str, object]:
        """Parameters of the runtime's grouping step (bottom-up models only)."""
        return {}
