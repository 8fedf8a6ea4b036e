"""Tiled prediction of images too large for one pass: overlapping tiles, objects stitched across seams.

Each tile is predicted on its own. An object is kept by the one tile whose *core* holds the centre of its
box: the core is the tile minus half the overlap on every side that borders another tile, so the cores
partition the image and an object narrower than half the overlap is seen whole by the tile that keeps
it. Objects are painted into one label map (first come keeps a shared pixel), which is what makes a
gigapixel image affordable: memory grows with the image, never with (objects x image size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from instseg.structures import Instances


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` shared pixels."""
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must be larger than the overlap {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _core(start: int, size: int, length: int, overlap: int) -> tuple[int, int]:
    """The part ``[lo, hi)`` of a tile that it owns: half the overlap is ceded on each inner side."""
    lo = start + overlap // 2 if start > 0 else 0
    hi = start + size - (overlap - overlap // 2) if start + size < length else length
    return lo, hi


@dataclass
class LabelledPrediction:
    """Instances of a large image kept as one label map (0 = background, ``i + 1`` = object ``i``)."""

    label_map: np.ndarray  # [H, W] int32
    boxes: np.ndarray  # [N, 4] float32 xyxy
    labels: np.ndarray  # [N] int64
    scores: np.ndarray  # [N] float32

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def from_instances(cls, instances: Instances) -> LabelledPrediction:
        """Flatten ``Instances`` into a label map (higher scores keep shared pixels); boxes re-derived."""
        canvas = LabelMapCanvas(instances.image_size)
        if instances.masks is not None and len(instances):
            ordered = instances.sort_by_score()
            masks = ordered.masks.numpy()  # type: ignore[union-attr]  # [N, H, W]
            ordered_scores = ordered.scores.numpy() if ordered.scores is not None else np.ones(len(ordered))
            for i, (x0, y0, x1, y1) in enumerate(ordered.boxes.numpy().astype(int)):
                canvas.paste(masks[i, y0:y1, x0:x1], y0, x0, int(ordered.labels[i]), float(ordered_scores[i]))
        return canvas.result()

    def object_masks(self) -> Iterator[tuple[int, tuple[int, int, int, int], np.ndarray]]:
        """Yield ``(index, (y0, x0, y1, x1), crop_mask)`` for each object, cropped to its box."""
        for i, box in enumerate(self.boxes):
            x0, y0, x1, y1 = (int(v) for v in box)
            yield i, (y0, x0, y1, x1), self.label_map[y0:y1, x0:x1] == i + 1

    def to_instances(self) -> Instances:
        """Full-size ``Instances`` (needs N x H x W bits: use for images of moderate size only)."""
        h, w = self.label_map.shape
        n = len(self)
        masks = torch.zeros((n, h, w), dtype=torch.bool)
        for i, (y0, x0, y1, x1), crop in self.object_masks():
            masks[i, y0:y1, x0:x1] = torch.from_numpy(crop)
        return Instances(
            (h, w),
            boxes=torch.from_numpy(self.boxes),
            labels=torch.from_numpy(self.labels),
            masks=masks,
            scores=torch.from_numpy(self.scores),
        )

    def to_coco(self, image_id: int, category_ids: list[int] | None = None) -> list[dict[str, Any]]:
        """COCO results with compressed RLEs built from each object's crop (no full-size mask is made)."""
        h, w = self.label_map.shape
        out = []
        for i, (y0, x0, y1, x1), crop in self.object_masks():
            label = int(self.labels[i])
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[label]) if category_ids is not None else label + 1,
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(self.scores[i]),
                    "segmentation": crop_to_rle(crop, y0, x0, h, w),
                    "area": int(crop.sum()),
                }
            )
        return out


def crop_to_rle(crop: np.ndarray, y0: int, x0: int, height: int, width: int) -> dict[str, Any]:
    """COCO RLE of a full ``height x width`` mask that is empty outside ``crop`` placed at ``(y0, x0)``.

    Written by hand because pycocotools only encodes full-size arrays: here the crop is widened to full
    columns (COCO RLE runs down columns), encoded, and its first and last runs stretched by the empty columns
    before and after it, so an object on a gigapixel slide costs its own columns only.
    """
    from pycocotools import mask as mask_utils

    h, w = crop.shape
    strip = np.zeros((height, w), dtype=np.uint8)
    strip[y0 : y0 + h] = crop
    flat = strip.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0, *runs]
    if len(runs) % 2 == 0:  # ends on foreground: close with an empty background run
        runs.append(0)
    runs[0] += x0 * height
    runs[-1] += (width - x0 - w) * height
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


class LabelMapCanvas:
    """Builds a ``LabelledPrediction`` object by object: each object takes the free pixels of its crop."""

    def __init__(self, image_size: tuple[int, int]) -> None:
        self.label_map = np.zeros(image_size, dtype=np.int32)
        self.boxes: list[list[int]] = []
        self.labels: list[int] = []
        self.scores: list[float] = []

    def paste(self, crop: np.ndarray, y0: int, x0: int, label: int, score: float) -> bool:
        """Paint the pixels of ``crop`` (bool [h, w] placed at ``(y0, x0)``) that no earlier object holds.

        Works inside the crop only, so the cost per object is its box, not the image; an object left with
        no free pixel is dropped (returns False).
        """
        region = self.label_map[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]]
        free = crop & (region == 0)
        if not free.any():
            return False
        region[free] = len(self.boxes) + 1
        rows, cols = np.nonzero(free)
        self.boxes.append([x0 + cols.min(), y0 + rows.min(), x0 + cols.max() + 1, y0 + rows.max() + 1])
        self.labels.append(label)
        self.scores.append(score)
        return True

    def result(self) -> LabelledPrediction:
        """The painted label map with each object's box, label and score."""
        return LabelledPrediction(
            self.label_map,
            np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(self.labels, dtype=np.int64),
            np.asarray(self.scores, dtype=np.float32),
        )


def predict_tiled(
    predict: Callable[[np.ndarray], Instances],
    image: np.ndarray,
    tile: int = 1024,
    overlap: int = 256,
) -> LabelledPrediction:
    """Predict ``image`` ([H, W, 3] uint8) tile by tile with ``predict`` and stitch the objects.

    ``overlap`` should be at least twice the largest object's size for seamless results.
    """
    h, w = image.shape[:2]
    canvas = LabelMapCanvas((h, w))
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    for ty in ys:
        for tx in xs:
            th, tw = min(tile, h - ty), min(tile, w - tx)
            core_y = _core(ty, th, h, overlap)
            core_x = _core(tx, tw, w, overlap)
            found = predict(np.ascontiguousarray(image[ty : ty + th, tx : tx + tw]))
            if len(found) == 0 or found.masks is None:
                continue
            found_boxes = found.boxes.numpy()
            cy = ty + (found_boxes[:, 1] + found_boxes[:, 3]) / 2
            cx = tx + (found_boxes[:, 0] + found_boxes[:, 2]) / 2
            keep = (cy >= core_y[0]) & (cy < core_y[1]) & (cx >= core_x[0]) & (cx < core_x[1])
            found_scores = found.scores.numpy() if found.scores is not None else np.ones(len(found), np.float32)
            for i in np.flatnonzero(keep):
                bx0, by0, bx1, by1 = (int(v) for v in found_boxes[i])
                crop = found.masks[i, by0:by1, bx0:bx1].numpy()
                canvas.paste(crop, ty + by0, tx + bx0, int(found.labels[i]), float(found_scores[i]))
    return canvas.result()
