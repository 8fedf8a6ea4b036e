"""Integer label maps (0 = background, each other value one object) <-> masks and ``Instances``.

Files: 16-bit PNG while every label is < 65536 (8-bit and palette PNGs are read as their index values), 32-bit
TIFF beyond. A label map cannot hold overlapping objects, so writing one needs a rule for shared pixels: **the
smaller object wins** (it is painted last; equal areas: the object listed later wins, as in
``instseg.ops.instance_maps.instances_to_label_map``). Small objects such as
nuclei then survive next to large ones, and the result does not depend on anything but the masks and their
order. The count of pixels covered by more than one object and of objects left with no pixel is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from instseg.structures.instances import Instances

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


def masks_to_label_map(masks: np.ndarray, boxes: np.ndarray | None = None) -> LabelMap:
    """Paint bitmasks [N, H, W] into one label map (object ``i`` -> value ``i + 1``) by the smaller-wins rule.

    ``boxes`` (tight ``xyxy`` integers [N, 4], e.g. from the RLEs) saves a pass over the full masks.
    """
    masks = np.asarray(masks)
    masks = masks.view(bool) if masks.dtype == np.uint8 else masks.astype(bool, copy=False)
    n, height, width = masks.shape
    dtype = np.uint16 if n <= PNG_MAX_LABEL else np.uint32
    label_map = np.zeros((height, width), dtype=dtype)
    if n == 0:
        return LabelMap(label_map, 0, [])
    if boxes is None:
        boxes = _mask_boxes(masks)
    windows = [(slice(int(y0), int(y1)), slice(int(x0), int(x1))) for x0, y0, x1, y1 in boxes]
    crops = [masks[i][windows[i]] for i in range(n)]
    areas = [int(np.count_nonzero(c)) for c in crops]
    coverage = np.zeros((height, width), dtype=np.int32)
    order = sorted(range(n), key=lambda i: (-areas[i], i))  # painted last = smallest, then listed last
    for i in order:
        label_map[windows[i]][crops[i]] = i + 1
        coverage[windows[i]] += crops[i]
    present = np.zeros(n + 1, dtype=bool)
    present[np.unique(label_map)] = True
    lost = [i for i in range(n) if not present[i + 1]]
    return LabelMap(label_map, int(np.count_nonzero(coverage > 1)), lost)


def rles_to_label_map(rles: list[dict[str, Any]], height: int, width: int) -> LabelMap:
    """``masks_to_label_map`` for COCO RLEs, working on their runs (cost: the objects' areas, not N x H x W)."""
    from instseg.data.rle_runs import rle_pixel_indices

    n = len(rles)
    flat = np.zeros(height * width, dtype=np.uint16 if n <= PNG_MAX_LABEL else np.uint32)  # column-major
    pixels = [rle_pixel_indices(r) for r in rles]  # [A_i] each
    if n == 0:
        return LabelMap(flat.reshape(height, width), 0, [])
    order = sorted(range(n), key=lambda i: (-pixels[i].size, i))  # painted last = smallest, then listed last
    for i in order:
        flat[pixels[i]] = i + 1
    coverage = np.bincount(np.concatenate(pixels), minlength=height * width)  # [H * W] objects per pixel
    present = np.zeros(n + 1, dtype=bool)
    present[np.unique(flat)] = True
    lost = [i for i in range(n) if not present[i + 1]]
    label_map = np.ascontiguousarray(flat.reshape(width, height).T)  # [H, W]
    return LabelMap(label_map, int(np.count_nonzero(coverage > 1)), lost)


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight ``xyxy`` integer boxes [N, 4] of bitmasks [N, H, W] (empty masks give an empty window)."""
    rows = np.asarray(masks.any(axis=2))  # [N, H]
    cols = np.asarray(masks.any(axis=1))  # [N, W]
    boxes = np.zeros((masks.shape[0], 4), dtype=np.int64)
    for i in range(masks.shape[0]):
        ys, xs = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
        if ys.size:
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def label_map_to_masks(label_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a label map [H, W] into its label values [N] (ascending) and bitmasks [N, H, W] bool.

    The masks are a view on a column-major [H, W, N] buffer (what pycocotools encodes without a copy).
    """
    from scipy import ndimage

    label_map = np.asarray(label_map)
    ids, dense = np.unique(label_map, return_inverse=True)
    dense = dense.reshape(label_map.shape)
    if ids.size and ids[0] == 0:
        ids = ids[1:]
    else:
        dense = dense + 1  # no background value: every dense index shifts up past 0
    buffer = np.zeros((*label_map.shape, ids.size), dtype=bool, order="F")  # [H, W, N]
    # find_objects on the dense relabelling gives each object's bounding window (sparse ids would waste memory)
    for k, window in enumerate(ndimage.find_objects(dense)):  # window k belongs to dense value k + 1
        if window is not None:
            buffer[window[0], window[1], k] = dense[window] == k + 1
    return ids.astype(np.int64), buffer.transpose(2, 0, 1)


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


def label_map_to_instances(label_map: np.ndarray, labels: dict[int, int] | None = None) -> Instances:
    """Instances (ordered by label value) of a label map [H, W]; ``labels`` maps label value -> class index (0)."""
    ids, masks = label_map_to_masks(label_map)
    classes = [labels.get(int(v), 0) if labels else 0 for v in ids]
    return Instances(
        tuple(label_map.shape[:2]),  # type: ignore[arg-type]
        labels=torch.tensor(classes, dtype=torch.int64),
        masks=torch.from_numpy(np.ascontiguousarray(masks)),
    )


def instances_to_label_map(instances: Instances) -> LabelMap:
    """Paint the masks of ``instances`` into a label map (smaller-wins rule, see the module docstring)."""
    if instances.masks is None:
        raise ValueError("instances_to_label_map needs Instances with masks")
    return masks_to_label_map(instances.masks.detach().cpu().numpy())
