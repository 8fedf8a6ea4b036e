"""Serve an exported ``.onnx`` file through the torch-free runtime (``instseg_runtime.OnnxPredictor``).

The runtime takes one image per run (the exported graph has a batch of one), so a batch is run image by image;
its numpy results are turned into compact ``Instances`` so that the responses are encoded exactly as for the
PyTorch backend. Large images are not tiled here: ``--max-pixels`` bounds what one run may take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from instseg.structures import Instances
from instseg.structures.box_masks import BoxMasks


class OnnxBackend:
    """Run an ``OnnxPredictor`` on batches (one image at a time), results as compact ``Instances``."""

    kind = "onnxruntime"

    def __init__(self, predictor: Any, name: str, score_thr: float | None = None, version: str | None = None) -> None:
        self.predictor = predictor
        self.name = name
        self.score_thr = score_thr
        self.version = version
        self.class_names = [str(n) for n in predictor.class_names]
        self.category_ids: list[int] | None = None

    def _one(self, image: np.ndarray) -> Instances:
        found = self.predictor(image)  # RuntimeInstances: numpy boxes [N, 4], labels, scores [N], masks [N, H, W]
        keep = np.ones(len(found), dtype=bool) if self.score_thr is None else found.scores >= self.score_thr
        masks = BoxMasks.from_full(torch.from_numpy(np.ascontiguousarray(found.masks[keep])))
        return Instances(
            tuple(found.image_size),
            boxes=torch.from_numpy(found.boxes[keep]),
            labels=torch.from_numpy(found.labels[keep]),
            masks=masks,
            scores=torch.from_numpy(found.scores[keep]),
        )

    def predict_batch(self, images: list[np.ndarray]) -> list[Instances]:
        """Segment each image ([H, W] or [H, W, C]; the runtime applies the same conversion rule)."""
        return [self._one(image) for image in images]

    def describe(self) -> dict[str, Any]:
        """Name, classes, input rule and version of the served file."""
        from instseg import __version__

        rule = dict(self.predictor.input_rule)
        return {
            "name": self.name,
            "backend": self.kind,
            "version": self.version or "unversioned",
            "instseg_version": __version__,
            "classes": [{"label": i, "name": n, "category_id": i + 1} for i, n in enumerate(self.class_names)],
            "input": {
                "min_size": rule.get("min_size"),
                "max_size": rule.get("max_size"),
                "size_divisibility": rule.get("size_divisibility"),
                "tile_above": None,
                "rule": rule.get("resize", ""),
            },
            "score_thr": self.score_thr,
        }


def onnx_backend(path: Path, score_thr: float | None, version: str | None) -> OnnxBackend:
    """A backend running the ONNX file at ``path``; ValueError when the runtime is not installed or the file is bad."""
    try:
        from instseg_runtime import OnnxPredictor
    except ImportError as err:
        raise ValueError(
            f"{path.name}: serving an .onnx file needs the instseg-runtime package (and onnxruntime); "
            "install it, or serve the checkpoint instead"
        ) from err
    predictor = OnnxPredictor(path)  # raises ValueError naming the file when it is missing or not an export
    return OnnxBackend(
        predictor,
        name=f"{predictor.metadata.get('model_type', 'onnx')}:{path.stem}",
        score_thr=score_thr,
        version=version,
    )
