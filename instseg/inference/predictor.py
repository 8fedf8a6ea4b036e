"""``Predictor``: a trained model behind a numpy-in, ``Instances``-out interface, tiling large images."""

from __future__ import annotations

import numpy as np
import torch

from instseg.inference.tiling import predict_tiled
from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures import Instances

AUTO_TILE_ABOVE = 2048  # images with a longer side than this are predicted tile by tile


class Predictor:
    """Run a model on user images: HxWx3 uint8 or HxW 8/16-bit grey numpy arrays.

    ``score_thr`` (if given) drops instances scoring below it; by default the model's own threshold rules.
    Images whose long side exceeds ``auto_tile_above`` (or every image, when ``tile_size`` is set) are predicted
    as overlapping ``tile_size`` tiles with objects stitched across the seams. Results hold their masks cropped
    to their boxes (``Instances.is_compact``), so their memory follows the objects, not the image.
    """

    def __init__(
        self,
        model: InstanceSegmenter,
        device: str | torch.device = "cpu",
        score_thr: float | None = None,
        tile_size: int | None = None,
        tile_overlap: int = 256,
        auto_tile_above: int | None = AUTO_TILE_ABOVE,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.score_thr = score_thr
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.auto_tile_above = auto_tile_above

    def needs_tiling(self, image: np.ndarray) -> bool:
        """Whether ``image`` is predicted tile by tile under this predictor's settings."""
        if self.tile_size is not None:
            return max(image.shape[:2]) > self.tile_size
        return self.auto_tile_above is not None and max(image.shape[:2]) > self.auto_tile_above

    @torch.inference_mode()
    def predict_whole(self, image: np.ndarray) -> Instances:
        """Segment one image in a single pass; the result is on the CPU at the image's own size."""
        instances = self.model.predict(image).to("cpu")
        if self.score_thr is not None and instances.scores is not None:
            instances = instances[instances.scores >= self.score_thr]
        return instances

    def predict_large(self, image: np.ndarray) -> Instances:
        """Segment an image of any size into compact ``Instances`` (tiles when needed; masks cropped to boxes)."""
        from instseg.data.image_io import to_rgb_uint8

        rgb = to_rgb_uint8(image)  # once for the whole image, so every tile sees the same intensity rule
        if not self.needs_tiling(rgb):
            return self.predict_whole(rgb).compact()
        tile = self.tile_size or max(1024, 2 * self.tile_overlap)
        return predict_tiled(self.predict_whole, rgb, tile=tile, overlap=self.tile_overlap)

    def __call__(self, image: np.ndarray) -> Instances:
        """Segment one image into compact ``Instances`` (``predict_large``; ``.masks`` gives full masks on request)."""
        return self.predict_large(image)
