"""Whole-slide and other huge images: read lazily tile by tile, predict with overlap, write the results tile by tile.

Sources are pyramidal or tiled TIFF (incl. OME-TIFF and SVS, through tifffile's zarr view ``aszarr``) and zarr
arrays; only the tiles a prediction tile touches are decoded, so the whole slide never sits in memory.

Stitching: each object is kept by the one tile whose core holds its box centre (the cores partition the
slide: ``instseg.inference.tiling.tile_cores``), and a pixel claimed by two objects goes to the first painted
(tiles in raster order, objects by score); an object left with no pixel of its own is dropped.

Outputs, in the folder ``out``:

- ``labels.zarr``: the label image (int32, 0 = background, ``id`` = object), written region by region; with
  ``label_tiff=True`` also ``labels.tif``, a tiled BigTIFF streamed from it tile by tile;
- ``objects.jsonl``: one object per line, ``{"id", "category_id", "score", "bbox": [x, y, w, h], "area",
  "segmentation"}`` where ``segmentation`` is the COCO RLE of the object's **box crop** (``size == [h, w]``):
  the full-slide mask is that crop placed at ``(x, y)``. A full-size COCO RLE of a 100,000-px-wide slide
  would cost every object the slide's height per column; the crop costs its own box. ``full_slide_rle``
  converts a record to the full-size form where a tool needs it;
- ``slide.json``: the slide's size, the tiling, the object count and the intensity range used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instseg.inference.tiling import tile_cores, tile_starts
from instseg.structures import Instances
from instseg.structures.masks import crop_to_rle, mask_to_rle, rle_to_mask

TIFF_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".btf")
LABEL_CHUNK = 512  # chunk (and TIFF tile) side of the written label image


class SlideSource:
    """A lazy 2-D image (grey or up to 4 channels): ``shape`` and ``read(y0, x0, h, w)`` of one region.

    ``array`` is any lazily indexed array (zarr, or tifffile's zarr view) with ``axes`` naming its dimensions
    as tifffile does (``Y``, ``X``, ``S``/``C`` for channels; other axes must have length 1).
    """

    def __init__(self, array: Any, axes: str, name: str, closer: Any = None) -> None:
        shape = tuple(int(s) for s in array.shape)
        if len(axes) != len(shape):
            raise ValueError(f"{name}: axes {axes!r} do not match the array shape {shape}")
        extra = [(a, n) for a, n in zip(axes, shape, strict=True) if a not in "YXSC" and n > 1]
        channels = [n for a, n in zip(axes, shape, strict=True) if a in "SC"]
        if extra or "Y" not in axes or "X" not in axes or len(channels) > 1 or (channels and channels[0] > 4):
            raise ValueError(
                f"{name}: axes {axes} with shape {shape} is not one 2-D image (Z/T stacks and more than 4 "
                "channels are not slides)"
            )
        self.array, self.axes, self.name, self._closer = array, axes, name, closer
        self.height, self.width = shape[axes.index("Y")], shape[axes.index("X")]
        self.dtype = np.dtype(array.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.height, self.width

    def read(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """The region ``[y0:y0+h, x0:x0+w]`` as [h, w] or [h, w, C] in the slide's dtype (only its tiles decoded)."""
        index = tuple(
            slice(y0, y0 + h) if a == "Y" else slice(x0, x0 + w) if a == "X" else slice(None) for a in self.axes
        )
        region = np.asarray(self.array[index])
        kept = "".join(a for a in self.axes if a in "YXSC")
        region = region.reshape([region.shape[i] for i, a in enumerate(self.axes) if a in "YXSC"])
        order = [kept.index("Y"), kept.index("X")] + [i for i, a in enumerate(kept) if a in "SC"]
        return np.transpose(region, order)

    def close(self) -> None:
        """Close the underlying file, if any."""
        if self._closer is not None:
            self._closer.close()

    def __enter__(self) -> SlideSource:
        """Use as a context manager: the file is closed on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_slide(path: str | Path, level: int = 0) -> SlideSource:
    """Open a TIFF (pyramid ``level``, 0 = full resolution) or a zarr array/multiscale group, lazily."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: cannot read slide (no such file or folder)")
    if path.suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        try:
            tif = tifffile.TiffFile(path)
        except Exception as err:  # tifffile raises many types for corrupt files (TiffFileError, struct.error...)
            raise ValueError(f"{path}: cannot read slide ({type(err).__name__}: {err})") from err
        try:
            if not tif.series:
                raise ValueError(f"{path}: cannot read slide (no image data)")
            series = tif.series[0]
            if not 0 <= level < len(series.levels):
                raise ValueError(f"{path}: level {level} does not exist (the slide has {len(series.levels)})")
            array = zarr.open(series.aszarr(level=level), mode="r")
            return SlideSource(array, series.levels[level].axes, str(path), closer=tif)
        except ValueError:
            tif.close()
            raise
        except Exception as err:  # corrupt pages surface as tifffile's or zarr's own error types
            tif.close()
            raise ValueError(f"{path}: cannot read slide ({type(err).__name__}: {err})") from err
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # zarr raises its own types for missing or corrupt metadata
        raise ValueError(f"{path}: cannot read slide ({type(err).__name__}: {err})") from err
    if isinstance(node, zarr.Group):  # an OME-Zarr style multiscale group: arrays "0", "1", ... by level
        if str(level) not in node:
            raise ValueError(f"{path}: zarr group has no array {level!r} (levels are its arrays '0', '1', ...)")
        node = node[str(level)]
    elif level != 0:
        raise ValueError(f"{path}: a single zarr array has only level 0, asked for {level}")
    if not isinstance(node, zarr.Array):
        raise ValueError(f"{path}: level {level} is a zarr group, not an array")
    ndim = len(node.shape)
    axes = str(node.attrs.get("axes", "YXS"[:ndim] if ndim <= 3 else ""))
    return SlideSource(node, axes, str(path))


def intensity_range(source: SlideSource, samples: int = 16, side: int = 256) -> tuple[float, float] | None:
    """The 0.1 / 99.9 percentiles of a non-uint8 slide, from a grid of ``samples`` regions (``None`` for uint8).

    One range for the whole slide, so every tile sees the same intensity rule (``to_rgb_uint8`` per tile would
    stretch an empty tile's noise to full contrast).
    """
    from instseg.data.image_io import PERCENTILES

    if source.dtype == np.uint8:
        return None
    h, w = source.shape
    per_side = max(1, int(np.sqrt(samples)))
    values = []
    for y in np.linspace(0, max(h - side, 0), per_side).astype(int):
        for x in np.linspace(0, max(w - side, 0), per_side).astype(int):
            region = source.read(int(y), int(x), min(side, h), min(side, w)).astype(np.float64)
            values.append(region[np.isfinite(region)])
    finite = np.concatenate(values)
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(finite, PERCENTILES)
    return float(lo), float(max(hi, lo + 1e-6))


def to_rgb(region: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """A slide region [h, w(, C)] as [h, w, 3] uint8 under the slide-wide ``value_range``."""
    from instseg.data.image_io import to_rgb_uint8

    if value_range is not None:
        lo, hi = value_range
        scaled = np.nan_to_num((region.astype(np.float32) - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0)
        region = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return to_rgb_uint8(region)


@dataclass
class SlideSummary:
    """What ``predict_slide`` did: the slide's size, tiles, objects, seconds and the files written."""

    height: int
    width: int
    tiles: int
    objects: int
    seconds: float
    files: dict[str, Path]


def _paste_tile(
    found: Instances, region: np.ndarray, ty: int, tx: int, core: tuple[int, int, int, int], next_id: int
) -> Iterator[tuple[int, int, int, np.ndarray, int, float]]:
    """Paint the objects of one tile kept by its core into ``region`` (the label image under the tile).

    Yields ``(id, y0, x0, crop, label, score)`` per painted object, its crop cut to the pixels it won.
    """
    if len(found) == 0:
        return
    box_masks = found.box_masks  # crops in their windows: a tile's full-frame masks are never copied here
    if box_masks is None:
        raise ValueError("slide prediction needs a predictor that gives masks")
    windows = box_masks.windows.numpy()
    boxes = found.boxes.numpy()
    scores = found.scores.numpy() if found.scores is not None else np.ones(len(found), np.float32)
    cy = ty + (boxes[:, 1] + boxes[:, 3]) / 2
    cx = tx + (boxes[:, 0] + boxes[:, 2]) / 2
    keep = (cy >= core[0]) & (cy < core[1]) & (cx >= core[2]) & (cx < core[3])
    order = np.argsort(-scores, kind="stable")  # higher scores keep shared pixels
    for i in order[keep[order]]:
        bx0, by0, bx1, by1 = (int(v) for v in windows[i])
        crop = box_masks.crops[i].numpy()
        window = region[by0:by1, bx0:bx1]
        free = crop & (window == 0)
        if not free.any():
            continue
        window[free] = next_id
        rows, cols = np.flatnonzero(free.any(axis=1)), np.flatnonzero(free.any(axis=0))
        tight = free[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        yield next_id, ty + by0 + int(rows[0]), tx + bx0 + int(cols[0]), tight, int(found.labels[i]), float(scores[i])
        next_id += 1


def predict_slide(
    predict: Callable[[np.ndarray], Instances],
    source: SlideSource,
    out: str | Path,
    tile: int = 1024,
    overlap: int = 128,
    category_ids: list[int] | None = None,
    label_tiff: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> SlideSummary:
    """Predict a slide tile by tile with ``predict`` ([h, w, 3] uint8 -> Instances at that size) and write
    ``labels.zarr`` (+ ``labels.tif``), ``objects.jsonl`` and ``slide.json`` into ``out``.

    Memory holds one tile, its predictions and the label image under it, whatever the slide's size.
    ``overlap`` should be at least twice the largest object's size for seamless results. ``out`` must be new
    or empty unless ``overwrite`` (then its earlier contents are removed first), and may not hold the slide.
    """
    import zarr
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from instseg.data.output_paths import prepare_output_dir
    from instseg.inference.writers import write_json_atomic

    out = Path(out)
    prepare_output_dir(out, inputs=[Path(source.name)] if Path(source.name).exists() else [], overwrite=overwrite)
    h, w = source.shape
    files = {"labels": out / "labels.zarr", "objects": out / "objects.jsonl", "summary": out / "slide.json"}
    chunk = (min(LABEL_CHUNK, h), min(LABEL_CHUNK, w))
    labels = zarr.create_array(str(files["labels"]), shape=(h, w), chunks=chunk, dtype="int32", overwrite=True)
    value_range = intensity_range(source)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    cores_y, cores_x = tile_cores(ys, tile, h), tile_cores(xs, tile, w)
    next_id, start = 1, time.perf_counter()
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not progress,
    )  # fmt: skip
    with bar, files["objects"].open("w") as objects:
        task = bar.add_task(f"{Path(source.name).name} tiles", total=len(ys) * len(xs))
        for ty, core_y in zip(ys, cores_y, strict=True):
            for tx, core_x in zip(xs, cores_x, strict=True):
                th, tw = min(tile, h - ty), min(tile, w - tx)
                core = (*core_y, *core_x)
                found = predict(to_rgb(source.read(ty, tx, th, tw), value_range)).to("cpu")
                region = np.asarray(labels[ty : ty + th, tx : tx + tw])
                painted = 0
                for oid, y0, x0, crop, label, score in _paste_tile(found, region, ty, tx, core, next_id):
                    record = {
                        "id": oid,
                        "category_id": int(category_ids[label]) if category_ids is not None else label + 1,
                        "score": score,
                        "bbox": [x0, y0, int(crop.shape[1]), int(crop.shape[0])],
                        "area": int(crop.sum()),
                        "segmentation": mask_to_rle(crop),
                    }
                    objects.write(json.dumps(record) + "\n")
                    painted += 1
                if painted:
                    labels[ty : ty + th, tx : tx + tw] = region
                next_id += painted
                del found, region  # freed before the next tile is predicted, not after
                bar.advance(task)
    if label_tiff:
        files["labels_tiff"] = out / "labels.tif"
        write_tiled_tiff(labels, files["labels_tiff"])
    seconds = time.perf_counter() - start
    summary = {
        "source": Path(source.name).name,
        "height": h,
        "width": w,
        "tile": tile,
        "overlap": overlap,
        "tiles": len(ys) * len(xs),
        "objects": next_id - 1,
        "intensity_range": value_range,
        "seconds": round(seconds, 2),
        "segmentation": "COCO RLE of each object's box crop; place it at bbox[0], bbox[1]",
    }
    write_json_atomic(summary, files["summary"])
    return SlideSummary(h, w, len(ys) * len(xs), next_id - 1, seconds, files)


def write_tiled_tiff(labels: Any, path: Path, side: int = LABEL_CHUNK) -> None:
    """Stream a 2-D label array (zarr) into a tiled, compressed BigTIFF, one ``side`` x ``side`` tile at a time."""
    import tifffile

    h, w = labels.shape

    def tiles() -> Iterator[np.ndarray]:
        for y in range(0, h, side):
            for x in range(0, w, side):
                block = np.zeros((side, side), dtype=np.int32)
                part = np.asarray(labels[y : y + side, x : x + side])
                block[: part.shape[0], : part.shape[1]] = part
                yield block

    tifffile.imwrite(path, tiles(), shape=(h, w), dtype=np.int32, tile=(side, side), bigtiff=True, compression="zlib")


def object_crop(record: dict[str, Any]) -> tuple[int, int, np.ndarray]:
    """``(y0, x0, mask crop [h, w] bool)`` of one ``objects.jsonl`` record."""
    x0, y0, bw, bh = (int(v) for v in record["bbox"])
    crop = rle_to_mask(record["segmentation"])
    if crop.shape != (bh, bw):
        raise ValueError(f"object {record.get('id')}: segmentation size {crop.shape} differs from its box {bw}x{bh}")
    return y0, x0, crop


def full_slide_rle(record: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """The full-size COCO RLE (``size == [height, width]``) of one ``objects.jsonl`` record."""
    y0, x0, crop = object_crop(record)
    return crop_to_rle(crop, x0, y0, height, width)
