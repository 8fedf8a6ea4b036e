"""What the server runs: a ``Predictor`` (PyTorch) behind one ``predict_batch`` call, with its description.

``predict_batch`` gives, for each image, exactly what ``instseg predict`` computes for it (``Predictor.predict_large``:
the same conversion rule, score threshold and tiling, masks cropped to their boxes), but runs the images that the
model resizes and pads to the same shape through one forward pass. Grouping by padded shape keeps a batched image's
result the one it gets alone: a convolution near the right or bottom edge sees the same zero padding either way.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

import numpy as np
import torch

from instseg.data.image_io import to_rgb_uint8
from instseg.inference.predictor import Predictor
from instseg.ops.resize import resized_shape
from instseg.structures import Instances


class Backend(Protocol):
    """A model the server can run: a batch of images in, one ``Instances`` per image out (on the CPU)."""

    class_names: list[str]
    category_ids: list[int] | None

    def predict_batch(self, images: list[np.ndarray]) -> list[Instances]:
        """Segment each image ([H, W, 3] uint8)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Name, classes, input rule and version, for ``GET /v1/models``."""
        ...


def _class_names(model: Any, num_classes: int) -> list[str]:
    """The model's class names, or ``class_<i>`` when it has none."""
    names = getattr(model, "class_names", None)
    return [str(n) for n in names] if names else [f"class_{i}" for i in range(num_classes)]


class PredictorBackend:
    """Run an ``instseg.Predictor`` on batches (images with one padded shape share a forward pass)."""

    kind = "pytorch"

    def __init__(self, predictor: Predictor, name: str | None = None, version: str | None = None) -> None:
        self.predictor = predictor
        model = predictor.model
        self.name = name or type(model).__name__
        self.version = version
        self.class_names = _class_names(model, int(getattr(model, "num_classes", 1)))
        ids = getattr(model, "category_ids", None)
        self.category_ids = [int(i) for i in ids] if ids else None

    def padded_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) the model resizes and pads an image of ``height x width`` to."""
        model = self.predictor.model
        h, w = resized_shape(height, width, model.min_size, model.max_size)
        d = max(1, int(model.size_divisibility))
        return (h + d - 1) // d * d, (w + d - 1) // d * d

    @torch.inference_mode()
    def _run_group(self, images: list[np.ndarray]) -> list[Instances]:
        """One forward pass over images sharing a padded shape (each [H, W, 3] uint8)."""
        model = self.predictor.model
        tensors = [torch.from_numpy(im).permute(2, 0, 1) for im in images]  # Tensor[3, H, W] on 0..255
        batch = model.preprocess(tensors)
        found = model.postprocess(model(batch), batch)
        out = []
        thr = self.predictor.score_thr
        for instances in found:
            instances = instances.to("cpu")  # as Predictor.predict_whole, then predict_large's compact()
            if thr is not None and instances.scores is not None:
                instances = instances[instances.scores >= thr]
            out.append(instances.compact())
        return out

    def predict_batch(self, images: list[np.ndarray]) -> list[Instances]:
        """Segment each image ([H, W] or [H, W, C], any dtype the readers give); large ones tile by tile."""
        rgbs = [to_rgb_uint8(im) for im in images]
        results: list[Instances | None] = [None] * len(rgbs)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, rgb in enumerate(rgbs):
            if self.predictor.needs_tiling(rgb):
                results[i] = self.predictor.predict_large(rgb)
            else:
                groups[self.padded_shape(*rgb.shape[:2])].append(i)
        for members in groups.values():
            if len(members) == 1:  # alone: exactly the call ``instseg predict`` makes for the image
                results[members[0]] = self.predictor(rgbs[members[0]])
                continue
            for i, found in zip(members, self._run_group([rgbs[i] for i in members]), strict=True):
                results[i] = found
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """Name, classes, input rule and version of the served model."""
        from instseg import __version__

        model = self.predictor.model
        return {
            "name": self.name,
            "backend": self.kind,
            "version": self.version or "unversioned",
            "instseg_version": __version__,
            "classes": [
                {"label": i, "name": n, "category_id": self.category_ids[i] if self.category_ids else i + 1}
                for i, n in enumerate(self.class_names)
            ],
            "input": {
                "min_size": model.min_size,
                "max_size": model.max_size,
                "size_divisibility": int(model.size_divisibility),
                "tile_above": self.predictor.tile_size or self.predictor.auto_tile_above,
                "rule": "PNG/JPEG/TIFF/BMP/WebP; grey repeated to RGB, alpha dropped, >8-bit rescaled from the "
                "0.1..99.9th percentiles to 0..255; short side resized to min_size, long side <= max_size",
            },
            "score_thr": self.predictor.score_thr,
        }
