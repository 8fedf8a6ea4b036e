"""Label-map files (0 = background, each other value one object): reading, writing, and painting objects into one.

Files: 16-bit PNG while every label is < 65536 (8-bit and palette PNGs are read as their index values), 32-bit
TIFF beyond. A label map cannot hold overlapping objects; painting follows the one rule of
``instseg.structures.label_map`` (**the smaller object wins**, equal areas: the object listed later wins), which
paints every label map of instseg. What a file loses is reported: the count of pixels covered by more than one
object and the objects left with no pixel. The in-memory conversions (label map -> masks / ``Instances``) are in
``instseg.ops.instance_maps``; this module adds the RLE ones, which work on runs instead of full masks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from instseg.structures.box_masks import BoxMasks
from instseg.structures.label_map import PNG_MAX_LABEL, LabelMap, paint_box_masks, paint_label_map

__all__ = [
    "PNG_MAX_LABEL",
    "LabelMap",
    "label_map_suffix",
    "label_map_to_rles",
    "masks_to_label_map",
    "read_label_map",
    "rles_to_label_map",
    "write_label_map",
]


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


def masks_to_label_map(masks: np.ndarray, boxes: np.ndarray | None = None) -> LabelMap:
    """Paint bitmasks [N, H, W] into one label map (object ``i`` -> value ``i + 1``) by the smaller-wins rule.

    ``boxes`` (tight ``xyxy`` integers [N, 4], e.g. from the RLEs) lets each mask be cropped to its window first,
    so shared pixels are counted per window instead of by a pass over the full masks.
    """
    masks = np.asarray(masks)
    masks = masks.view(bool) if masks.dtype == np.uint8 else masks.astype(bool, copy=False)
    if any(stride < 0 for stride in masks.strides):  # flipped views: torch.from_numpy takes no negative strides
        masks = masks.copy()
    if boxes is None:
        return paint_label_map(torch.from_numpy(masks))
    height, width = masks.shape[1:]
    windows = np.asarray(boxes, dtype=np.int64).reshape(-1, 4).tolist()
    crops = [torch.from_numpy(masks[i, y0:y1, x0:x1]) for i, (x0, y0, x1, y1) in enumerate(windows)]
    offsets = [(x0, y0) for x0, y0, _, _ in windows]
    return paint_box_masks(BoxMasks.from_crops((height, width), crops, offsets))


def rles_to_label_map(rles: list[dict[str, Any]], height: int, width: int) -> LabelMap:
    """``masks_to_label_map`` for COCO RLEs, working on their runs (cost: the objects' areas, not N x H x W)."""
    return paint_box_masks(rles_to_box_masks(rles, height, width))


def rles_to_box_masks(rles: list[dict[str, Any]], height: int, width: int) -> BoxMasks:
    """Box-cropped masks of COCO RLEs, each decoded from its runs into its own crop (no full-frame mask)."""
    from instseg.data.rle_runs import rle_crop

    crops, offsets = [], []
    for rle in rles:
        if [int(v) for v in rle["size"]] != [int(height), int(width)]:
            raise ValueError(f"RLE size {list(rle['size'])} differs from the image size [{height}, {width}]")
        crop, x0, y0 = rle_crop(rle)
        crops.append(torch.from_numpy(crop))
        offsets.append((x0, y0))
    return BoxMasks.from_crops((int(height), int(width)), crops, offsets)


def label_map_to_rles(label_map: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Label values [N] (ascending) and compressed COCO RLEs (``counts`` str) of the objects of a label map [H, W].

    Each object is encoded from its sorted pixel indices by the RLE codec (``instseg.structures.masks``): cost the
    foreground pixels, not N x H x W.
    """
    from instseg.structures.masks import rle_from_indices

    height, width = label_map.shape
    flat = np.asarray(label_map).T.reshape(-1)  # [H * W] column-major, the order RLE runs go in
    foreground = np.flatnonzero(flat)  # [P] ascending
    values = flat[foreground]
    order = np.argsort(values, kind="stable")  # groups objects, indices stay ascending inside each
    pixels, values = foreground[order], values[order]
    ids, firsts = np.unique(values, return_index=True)
    bounds = [*firsts.tolist(), pixels.size]
    rles = [rle_from_indices(pixels[bounds[k] : bounds[k + 1]], height, width) for k in range(ids.size)]
    return ids.astype(np.int64), rles
