"""``OnnxModel``: an exported file behind the model interface ``instseg.Predictor`` drives (``predict``, ``to``,
``eval``, ``class_names``), so ``instseg predict model.onnx ...`` gets every output of the PyTorch path (results
json, label maps, overlays, tiling) from the torch-free ``instseg_runtime.OnnxPredictor``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from instseg_runtime import OnnxPredictor, RuntimeInstances

from instseg.structures import Instances


def to_instances(found: RuntimeInstances) -> Instances:
    """``instseg.Instances`` holding the arrays of ``found`` (CPU tensors)."""
    return Instances(
        found.image_size,
        boxes=torch.from_numpy(found.boxes),
        labels=torch.from_numpy(found.labels),
        masks=torch.from_numpy(found.masks),
        scores=torch.from_numpy(found.scores),
    )


class OnnxModel:
    """An exported file predicting ``Instances`` like an ``InstanceSegmenter`` (CPU only)."""

    def __init__(self, path: str | Path, backend: str = "onnxruntime", threads: int | None = None) -> None:
        self.runtime = OnnxPredictor(path, backend=backend, threads=threads)
        self.class_names: list[str] = self.runtime.class_names
        ids = self.runtime.metadata.get("category_ids")
        self.category_ids: list[int] | None = [int(i) for i in ids] if ids else None

    def predict(self, image: np.ndarray) -> Instances:
        """Segment one image (numpy HxWx3 uint8, or HxW 8/16-bit grey) at its own size."""
        return to_instances(self.runtime(image))

    def to(self, device: Any) -> OnnxModel:
        """Only the CPU backends are wired; anything else is refused."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"{self.runtime.path}: ONNX models run on the CPU here, not on {device}")
        return self

    def eval(self) -> OnnxModel:
        return self
