"""Label-map files (0 = background, each other value one object): reading, writing, and painting objects into one.

Files: 16-bit PNG while every label is < 65536 (8-bit and palette PNGs are read as their index values), 32-bit
TIFF beyond. A label map cannot hold overlapping objects, so writing one needs a rule for shared pixels: **the
smaller object wins** (equal areas: the object listed later wins), the rule of
``instseg.ops.instance_maps.instances_to_label_map``, which paints in-memory masks here too. Small objects such as
nuclei then survive next to large ones, and the result does not depend on anything but the masks and their
order. What a file loses is reported: the count of pixels covered by more than one object and the objects left
with no pixel. The in-memory conversions (label map -> masks / ``Instances``) are in ``instseg.ops.instance_maps``;
this module adds the RLE ones, which work on runs instead of full masks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from instseg.ops.instance_maps import instances_to_label_map

PNG_MAX_LABEL = 65535


class LabelMap(NamedTuple):
    """A painted label map [H, W] (object ``i`` has value ``i + 1``), shared-pixel count and objects lost."""

    label_map: np.ndarray
    overlap_pixels: int
    lost: list[int]


def label_map_suffix(max_label: int) -> str:
    """``".png"`` (16-bit) while labels fit in 16 bits, else ``".tif"`` (32-bit)."""
    return ".png" if max_label <= PNG_MAX_LABEL else ".tif"


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a label map file (PNG 8/16-bit or palette, TIFF) as [H, W] int64; bad files raise ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such label map")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as img:
                img.load()
                if img.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                    raise ValueError(f"a label map must have one integer channel, got mode {img.mode}")
                array = np.asarray(img)
    except ValueError as err:
        raise ValueError(f"{path}: cannot read label map ({err})") from err
    except Exception as err:  # Pillow/tifffile raise many types for corrupt files
        raise ValueError(f"{path}: cannot read label map ({type(err).__name__}: {err})") from err
    if array.ndim == 3 and array.shape[-1] == 1:  # [H, W, 1]
        array = array[:, :, 0]
    elif array.ndim == 3 and array.shape[0] == 1:  # [1, H, W]
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{path}: a label map must be 2-D [H, W], got shape {tuple(array.shape)}")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{path}: a float label map must hold whole numbers")
    elif not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"{path}: a label map must hold integers, got {array.dtype}")
    labels = array.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: a label map must not hold negative values (min {labels.min()})")
    return labels


def write_label_map(path: str | Path, label_map: np.ndarray) -> None:
    """Write a label map [H, W]: 16-bit PNG for a ``.png`` path (labels must be <= 65535), 32-bit TIFF for ``.tif``."""
    path = Path(path)
    labels = np.asarray(label_map)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: a label map must be an integer array [H, W], got {labels.dtype} {labels.shape}")
    top = int(labels.max()) if labels.size else 0
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: a label map must not hold negative values")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".png":
        if top > PNG_MAX_LABEL:
            raise ValueError(f"{path}: label {top} does not fit a 16-bit PNG; use a .tif path")
        from PIL import Image

        Image.fromarray(labels.astype(np.uint16)).save(path)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, labels.astype(np.uint32), compression="zlib")
    else:
        raise ValueError(f"{path}: label maps are written as .png or .tif, not {suffix!r}")


def _label_dtype(n: int) -> type[np.unsignedinteger]:
    """The dtype a label map of ``n`` objects is stored in: 16 bits while they fit, else 32."""
    return np.uint16 if n <= PNG_MAX_LABEL else np.uint32


def _painted(label_map: np.ndarray, coverage: np.ndarray, n: int) -> LabelMap:
    """``LabelMap`` of a painted map [H, W] of ``n`` objects, with the shared pixels of ``coverage`` (objects per
    pixel) and the objects left without a pixel."""
    label_map = label_map.astype(_label_dtype(n), copy=False)
    present = np.zeros(n + 1, dtype=bool)
    present[np.unique(label_map)] = True
    lost = [i for i in range(n) if not present[i + 1]]
    return LabelMap(label_map, int(np.count_nonzero(coverage > 1)), lost)


def masks_to_label_map(masks: np.ndarray, boxes: np.ndarray | None = None) -> LabelMap:
    """Paint bitmasks [N, H, W] into one label map (object ``i`` -> value ``i + 1``) by the smaller-wins rule.

    ``boxes`` (tight ``xyxy`` integers [N, 4], e.g. from the RLEs) limits the count of shared pixels to each
    object's window instead of a pass over the full masks.
    """
    masks = np.asarray(masks)
    masks = masks.view(bool) if masks.dtype == np.uint8 else masks.astype(bool, copy=False)
    if any(stride < 0 for stride in masks.strides):  # flipped views: torch.from_numpy takes no negative strides
        masks = masks.copy()
    n, height, width = masks.shape
    label_map = instances_to_label_map(torch.from_numpy(masks)).numpy()  # [H, W] int64
    if boxes is None:
        coverage = masks.sum(axis=0, dtype=np.int32)  # [H, W] objects per pixel
    else:
        coverage = np.zeros((height, width), dtype=np.int32)
        for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.int64).tolist()):
            coverage[y0:y1, x0:x1] += masks[i, y0:y1, x0:x1]
    return _painted(label_map, coverage, n)


def rles_to_label_map(rles: list[dict[str, Any]], height: int, width: int) -> LabelMap:
    """``masks_to_label_map`` for COCO RLEs, working on their runs (cost: the objects' areas, not N x H x W)."""
    from instseg.data.rle_runs import rle_pixel_indices

    n = len(rles)
    flat = np.zeros(height * width, dtype=_label_dtype(n))  # column-major
    pixels = [rle_pixel_indices(r) for r in rles]  # [A_i] each
    if n == 0:
        return _painted(flat.reshape(height, width), flat, 0)
    order = sorted(range(n), key=lambda i: (-pixels[i].size, i))  # painted last = smallest, then listed last
    for i in order:
        flat[pixels[i]] = i + 1
    coverage = np.bincount(np.concatenate(pixels), minlength=height * width)  # [H * W] objects per pixel
    return _painted(np.ascontiguousarray(flat.reshape(width, height).T), coverage, n)  # [H, W]


def label_map_to_rles(label_map: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Label values [N] (ascending) and compressed COCO RLEs (``counts`` str) of the objects of a label map [H, W].

    Runs are read off the sorted pixel indices of each object (cost: the foreground pixels, not N x H x W) and
    pycocotools compresses them.
    """
    from pycocotools import mask as mask_utils

    height, width = label_map.shape
    flat = np.asarray(label_map).T.reshape(-1)  # [H * W] column-major, the order RLE runs go in
    foreground = np.flatnonzero(flat)  # [P] ascending
    values = flat[foreground]
    order = np.argsort(values, kind="stable")  # groups objects, indices stay ascending inside each
    pixels, values = foreground[order], values[order]
    ids, firsts = np.unique(values, return_index=True)
    bounds = [*firsts.tolist(), pixels.size]
    rles = []
    for k in range(ids.size):
        index = pixels[bounds[k] : bounds[k + 1]]  # [A] one object's pixels
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        run_starts = index[np.concatenate([[0], breaks])]
        run_ends = index[np.concatenate([breaks - 1, [index.size - 1]])] + 1
        gaps = run_starts - np.concatenate([[0], run_ends[:-1]])  # background before each run
        counts = np.stack([gaps, run_ends - run_starts], axis=1).reshape(-1).tolist()
        if run_ends[-1] < height * width:  # trailing background (pycocotools writes no empty last run)
            counts.append(height * width - int(run_ends[-1]))
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        rles.append({"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")})
    return ids.astype(np.int64), rles
