"""The input rule of an exported model in numpy: image conversion to RGB uint8, the resize rule, antialiased resize.

The conversion rule and the resize rule are the ones ``instseg`` itself uses (``instseg.data.image_io`` and
``instseg.ops.resize`` import them from here); the antialiased resize repeats, in numpy, the torch resize of
``InstanceSegmenter.preprocess`` (tests compare both sides).
"""

from __future__ import annotations

import numpy as np

PERCENTILES = (0.1, 99.9)


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Image [H, W] or [H, W, 1..4] -> [H, W, 3] uint8: alpha dropped, grey replicated, non-uint8 rescaled so that
    the 0.1..99.9 percentiles map to 0..255 (instseg's one conversion rule, which ``instseg.data.image_io`` uses)."""
    if not isinstance(array, np.ndarray) and not hasattr(array, "__array__"):
        raise TypeError(f"expected an image array [H, W] or [H, W, 1..4], got {type(array).__name__}")
    image = np.asarray(array)
    if image.dtype == object or not (image.dtype == np.bool_ or np.issubdtype(image.dtype, np.number)):
        raise TypeError(f"expected a numeric image array, got dtype {image.dtype}")
    if image.ndim in (2, 3) and (image.shape[0] == 0 or image.shape[1] == 0):
        raise ValueError(f"the image is empty (shape {tuple(image.shape)}); it needs at least one pixel")
    if image.ndim == 3 and image.shape[2] in (1, 2):  # grey (+ alpha: dropped)
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:  # RGBA: alpha dropped, not composited
        image = image[:, :, :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an image [H, W] or [H, W, 1..4], got shape {tuple(image.shape)}")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        image = _rescale_percentiles(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if not image.flags.writeable or not image.flags.c_contiguous:  # e.g. Pillow's read-only views
        image = np.array(image, order="C")
    return image


def _rescale_percentiles(image: np.ndarray) -> np.ndarray:
    """The 0.1..99.9 percentile range of a >8-bit or float image mapped linearly onto 0..255 (uint8)."""
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"cannot convert an image of dtype {image.dtype} to uint8")
    values = image.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(image.shape, dtype=np.uint8)
    lo, hi = np.percentile(finite, PERCENTILES)
    if hi <= lo:
        return np.zeros(image.shape, dtype=np.uint8)
    scaled = np.nan_to_num((values - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def resized_shape(height: int, width: int, min_size: int | None, max_size: int | None) -> tuple[int, int]:
    """Shape with the short side scaled to ``min_size`` and the long side kept <= ``max_size`` (aspect kept)."""
    scale = 1.0
    if min_size is not None:
        scale = min_size / min(height, width)
    if max_size is not None and max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _antialias_weights(in_len: int, out_len: int) -> np.ndarray:
    """Weights [out_len, in_len] of an antialiased bilinear (triangle filter) resize along one axis.

    Same geometry as torch's ``interpolate(..., mode="bilinear", antialias=True, align_corners=False)``: output
    pixel ``i`` is centred at ``(i + 0.5) * s`` input pixels (``s = in / out``), the triangle is stretched by
    ``max(s, 1)`` and the taps inside the image are renormalised to sum to 1. Written out (not an imaging
    library's resize) because that exact filter is what the model saw during training.
    """
    scale = in_len / out_len
    support = max(scale, 1.0)
    centre = (np.arange(out_len, dtype=np.float64) + 0.5) * scale
    taps = np.arange(in_len, dtype=np.float64) + 0.5
    weights = np.clip(1.0 - np.abs(taps[None, :] - centre[:, None]) / support, 0.0, None)
    total = weights.sum(axis=1, keepdims=True)
    return (weights / np.where(total > 0, total, 1.0)).astype(np.float32)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Image [H, W, C] (any real dtype) resized to ``size`` (h, w) as float32 [h, w, C] (antialiased bilinear)."""
    h, w = size
    x = image.astype(np.float32, copy=False)
    if (h, w) == x.shape[:2]:
        return x
    wy = _antialias_weights(x.shape[0], h)  # [h, H]
    wx = _antialias_weights(x.shape[1], w)  # [w, W]
    rows = np.tensordot(wy, x, axes=(1, 0))  # [h, W, C]
    return np.ascontiguousarray(np.tensordot(rows, wx, axes=(1, 1)).transpose(0, 2, 1))  # [h, w, C]
