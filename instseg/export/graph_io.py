"""The exported graph's inputs and the base of the per-family wrappers (see ``README.md`` for the layout)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from instseg.export.graph_ops import pad_to_multiple, size_tensor
from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import ImageBatch

INPUT_NAMES = ["image", "original_size"]
DETECTION_OUTPUTS = ["boxes", "scores", "labels", "masks"]
# ``instseg.ops.intensity.percentile_normalize``'s defaults, which the dense models use
PERCENTILE_SAMPLES = 1 << 16
PERCENTILE_EPS = 1e-3


class ExportGraph(nn.Module):
    """Tensor-only module traced into ONNX: ``forward(image, original_size) -> tuple of outputs``.

    ``image`` is Tensor[1, 3, h, w] float32, raw 0..255 pixels already resized by the model's rule (unpadded);
    ``original_size`` Tensor[2] int64 is ``(height, width)`` of the image as the user gave it, the frame every
    output is in. Subclasses set ``family`` and ``output_names`` and implement ``forward``.
    """

    family = ""

    def __init__(self, model: InstanceSegmenter) -> None:
        super().__init__()
        self.model = model
        self.output_names: list[str] = list(DETECTION_OUTPUTS)

    def batch(self, image: Tensor, original_size: Tensor) -> ImageBatch:
        """The model's input: ``image`` zero-padded to its ``size_divisibility``, sizes as traced values."""
        h, w = size_tensor(image, 2), size_tensor(image, 3)
        padded = pad_to_multiple(image, self.model.size_divisibility)
        return ImageBatch(padded, [(h, w)], [(original_size[0], original_size[1])])  # type: ignore[list-item]

    def normalized(self, batch: ImageBatch) -> Tensor:
        """Tensor[1, 3, H, W]: the model's normalisation of ``batch`` (``InstanceSegmenter.normalize``, then the
        per-image percentiles of the dense models), written with masks and traced sizes.

        The eager rule zeroes the padding by slice assignment and reads the percentile ranks as Python ints, which
        a trace freezes into one image size; this is the same arithmetic (tests compare the two).
        """
        m = self.model
        ((h, w),) = batch.image_sizes
        x = (batch.tensor.float() - m.pixel_mean) / m.pixel_std
        rows = torch.arange(size_tensor(x, 2))[:, None] < h  # type: ignore[call-overload]  # a traced size when exporting
        cols = torch.arange(size_tensor(x, 3))[None, :] < w  # type: ignore[call-overload]  # a traced size when exporting
        valid = (rows & cols).to(x.dtype)  # [H, W]
        x = x * valid
        percentiles = getattr(m, "percentiles", None)
        if percentiles is None:
            return x
        flat = x[0, :, :h, :w].reshape(-1)
        n = size_tensor(flat, 0)
        step = torch.clamp(n // PERCENTILE_SAMPLES, min=1)
        flat = flat[torch.arange(0, n, step)]  # type: ignore[call-overload]  # a traced size when exporting
        last = (size_tensor(flat, 0) - 1).float()
        ordered = flat.sort().values
        lo = ordered[torch.round(last * (percentiles[0] / 100.0)).long()]
        hi = ordered[torch.round(last * (percentiles[1] / 100.0)).long()]
        return (x - lo) / (hi - lo).clamp(min=PERCENTILE_EPS) * valid

    def grouping_params(self) -> dict[str, object]:
        """Parameters of the runtime's grouping step (bottom-up models only)."""
        return {}
