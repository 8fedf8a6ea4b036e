"""Run-level access to COCO RLEs: run lengths, pixel indices and cropped masks without decoding full images.

pycocotools only decodes an RLE to a full [H, W] mask; converting a data set one object at a time that way costs
N x H x W memory and time per image (hundreds of MB for a 1388x1040 image with 375 nuclei). Working on the runs
costs only the objects' areas, so label-map painting and polygon tracing use these functions instead.
Indices are column-major (``x * H + y``), the order COCO RLEs run in.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compressed_rle_counts(counts: str | bytes) -> np.ndarray | None:
    """Run lengths [M] of a compressed COCO RLE string, or None when the string is malformed.

    Written by hand (vectorised numpy, following the LEB128-like scheme of COCO's ``maskApi.c``) because
    pycocotools exposes no counts parser and silently decodes malformed strings into garbage masks.
    Each count is 5-bit chunks (char - 48), bit 0x20 = more chunks follow, bit 0x10 of the last chunk = negative;
    counts after the second are stored as differences to the count two places earlier.
    """
    chars = np.frombuffer(counts.encode("ascii") if isinstance(counts, str) else counts, dtype=np.uint8).astype(
        np.int64
    )
    chars -= 48
    if chars.size == 0 or chars.min() < 0 or chars.max() > 63 or chars[-1] & 0x20:
        return None
    ends = (chars & 0x20) == 0  # [L] last chunk of a number
    number = np.concatenate([[0], np.cumsum(ends)[:-1]])  # [L] which number each chunk belongs to
    starts = np.flatnonzero(np.concatenate([[True], ends[:-1]]))
    position = np.arange(chars.size) - starts[number]  # chunk index inside its number
    if position.max() > 6:  # more than 35 bits: not a count of any real image
        return None
    values = np.bincount(number, weights=(chars & 0x1F) << (5 * position)).astype(np.int64)
    last = chars[ends]
    negative = (last & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (position[ends][negative] + 1))
    values[1::2] = np.cumsum(values[1::2])  # undo the deltas: count j += count j - 2, for j > 2
    values[2::2] = np.cumsum(values[2::2])
    return values


def rle_counts(rle: dict[str, Any]) -> np.ndarray:
    """Run lengths [M] (background first) of a compressed or uncompressed COCO RLE; they must cover the image."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = np.asarray(counts, dtype=np.int64) if isinstance(counts, list) else compressed_rle_counts(counts)
    if runs is None or (runs.size and runs.min() < 0) or int(runs.sum()) != height * width:
        raise ValueError(f"malformed RLE: its runs do not cover the {height}x{width} image")
    return runs


def rle_pixel_indices(rle: dict[str, Any]) -> np.ndarray:
    """Column-major flat indices [A] (ascending) of the foreground pixels of a COCO RLE."""
    runs = rle_counts(rle)
    starts = (np.cumsum(runs) - runs)[1::2]  # [R] first index of each foreground run
    lengths = runs[1::2]  # [R]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths  # foreground pixels in earlier runs
    return np.repeat(starts - before, lengths) + np.arange(total, dtype=np.int64)


def rle_crop(rle: dict[str, Any]) -> tuple[np.ndarray, int, int]:
    """The object's pixels as a tight crop [h', w'] bool plus its top-left ``(x0, y0)`` in the image."""
    height = int(rle["size"][0])
    index = rle_pixel_indices(rle)
    if index.size == 0:
        return np.zeros((0, 0), dtype=bool), 0, 0
    xs, ys = np.divmod(index, height)
    x0, y0 = int(xs.min()), int(ys.min())
    crop = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), dtype=bool)
    crop[ys - y0, xs - x0] = True
    return crop, x0, y0
