"""``RuntimeInstances``: the objects found in one image, as numpy arrays (the fields of ``instseg.Instances``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class RuntimeInstances:
    """Objects of one image of ``image_size = (height, width)``:

    - ``boxes``: float32 [N, 4], ``xyxy`` absolute pixels of the image as given;
    - ``labels``: int64 [N], class index ``0..K-1`` (names in ``OnnxPredictor.class_names``);
    - ``scores``: float32 [N] in [0, 1];
    - ``masks``: bool [N, H, W].
    """

    image_size: tuple[int, int]
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> RuntimeInstances:
        """An image with no objects."""
        h, w = image_size
        return cls(
            (h, w),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            np.zeros((0, h, w), bool),
        )


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight ``xyxy`` boxes float32 [N, 4] of bool masks [N, H, W] (pixel edges: x1 = last column + 1)."""
    boxes = np.zeros((masks.shape[0], 4), np.float32)
    for i, mask in enumerate(masks):
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if ys.size:
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def label_map_instances(
    label_map: np.ndarray,
    scores: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> RuntimeInstances:
    """Objects of a label map int [H, W] (0 = background), in increasing id order; ``scores``/``labels`` [N] in
    that order (defaults: 1 and class 0)."""
    ids = np.unique(label_map)
    ids = ids[ids > 0]
    h, w = label_map.shape
    masks = np.zeros((ids.size, h, w), bool)
    boxes = np.zeros((ids.size, 4), np.float32)
    if ids.size:
        # one pass over the foreground: each pixel goes to its object's slice
        index = np.searchsorted(ids, label_map)
        ys, xs = np.nonzero(label_map > 0)
        owner = index[ys, xs]
        masks[owner, ys, xs] = True
        # boxes from the same pass (not N scans of full masks): per-object min / max of the pixel coordinates
        compact = np.zeros((h, w), np.int64)
        compact[ys, xs] = owner + 1
        for i, (rows, cols) in enumerate(ndi.find_objects(compact, max_label=ids.size)):
            boxes[i] = (cols.start, rows.start, cols.stop, rows.stop)
    n = ids.size
    return RuntimeInstances(
        (h, w),
        boxes,
        np.zeros(n, np.int64) if labels is None else labels.astype(np.int64),
        np.ones(n, np.float32) if scores is None else scores.astype(np.float32),
        masks,
    )


def label_means(label_map: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``values`` [H, W] or [K, H, W] over each id 0..n of ``label_map`` [H, W] ([n + 1] or [n + 1, K])."""
    flat = label_map.ravel()
    counts = np.maximum(np.bincount(flat, minlength=n + 1), 1).astype(np.float64)
    if values.ndim == 2:
        return np.bincount(flat, weights=values.ravel().astype(np.float64), minlength=n + 1) / counts
    sums = [np.bincount(flat, weights=v.ravel().astype(np.float64), minlength=n + 1) for v in values]
    return np.stack(sums, axis=1) / counts[:, None]


def scored_instances(label_map: np.ndarray, score_map: np.ndarray, class_prob: np.ndarray | None) -> RuntimeInstances:
    """Objects of a label map scored by the mean of ``score_map`` [H, W] over each and labelled with the class of
    highest mean ``class_prob`` [K, H, W] (class 0 without it)."""
    label_map = label_map.astype(np.int64, copy=False)
    n = int(label_map.max()) if label_map.size else 0
    ids = np.unique(label_map)
    ids = ids[ids > 0]
    scores = label_means(label_map, score_map, n)[ids]
    labels = label_means(label_map, class_prob, n)[ids].argmax(1) if class_prob is not None else None
    return label_map_instances(label_map, scores=scores, labels=labels)
