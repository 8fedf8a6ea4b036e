"""``Predictor``: a trained model behind a numpy-in, ``Instances``-out interface (files and folders too)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import Instances


@dataclass
class PredictionResult:
    """The outcome for one input file: its instances, or the error that made it unreadable."""

    path: Path
    image: np.ndarray | None
    instances: Instances | None
    error: str | None = None


class Predictor:
    """Run a model on user images: HxWx3 uint8 or HxW 8/16-bit grey numpy arrays, or image files.

    ``score_thr`` (if given) drops instances scoring below it; by default the model's own threshold rules.
    """

    def __init__(self, model: InstanceSegmenter, device: str | torch.device = "cpu", score_thr: float | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.score_thr = score_thr

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Instances:
        """Segment one image; the result is on the CPU at the image's own size."""
        instances = self.model.predict(image).to("cpu")
        if self.score_thr is not None and instances.scores is not None:
            instances = instances[instances.scores >= self.score_thr]
        return instances

    def predict_files(self, paths: Iterable[Path]) -> Iterator[PredictionResult]:
        """Segment each file; an unreadable image yields a result with ``error`` set instead of stopping."""
        from instseg.data.image_io import read_image

        for path in paths:
            try:
                image = read_image(path)
            except ValueError as err:
                yield PredictionResult(Path(path), None, None, str(err))
                continue
            yield PredictionResult(Path(path), image, self(image))
