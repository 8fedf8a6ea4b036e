"""Whole-slide prediction: time and peak memory on synthetic slides of real nuclei, by slide size.

A slide of S x S pixels is built from 256 x 256 dsb2018 fluorescence images (train + val, randomly chosen,
flipped and rotated) and written tile by tile as a tiled, zlib-compressed BigTIFF with a half-size pyramid level,
so building it never holds the slide in memory either. Each size is then predicted by
``instseg.inference.slides.predict_slide`` with the shipped default model in a fresh process, whose peak
resident memory (``VmHWM``), wall time, time inside the model (the rest is reading, stitching and writing) and
the machine's load average are printed: memory should not grow with the slide's size.

    python benchmarks/slide.py --data DSB2018_DIR [--sizes 8192 16384 32768] [--work DIR] [--paths plain fast]

``--paths plain fast`` runs the shipped float32 path and the fast one (BatchNorm folded, bfloat16 network where
the CPU has it: ``instseg.inference.cpu_fast``) on the same slide and prints how far their label images agree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TILE = 256


def source_images(data: Path) -> list[np.ndarray]:
    """The 256 x 256 images of dsb2018 (train and val) as [256, 256, 3] uint8."""
    from instseg.data.image_io import read_image

    images = []
    for split in ("train", "val"):
        gt = json.loads((data / "annotations" / f"instances_{split}.json").read_text())
        for im in gt["images"]:
            if im["width"] == TILE and im["height"] == TILE:
                images.append(read_image(data / "images" / im["file_name"]))
    if not images:
        raise ValueError(f"{data}: no 256x256 images found")
    return images


def build_slide(data: Path, size: int, path: Path, seed: int = 0) -> None:
    """Write an ``size`` x ``size`` RGB slide of dsb2018 crops to ``path`` (tiled BigTIFF + one half-size level)."""
    import tifffile

    images = source_images(data)
    rng = np.random.default_rng(seed)
    per_side = size // TILE
    picks = rng.integers(0, len(images), size=(per_side, per_side))
    turns = rng.integers(0, 8, size=(per_side, per_side))

    def crop(r: int, c: int) -> np.ndarray:
        image = np.rot90(images[picks[r, c]], k=int(turns[r, c]) % 4)
        return np.ascontiguousarray(image[:, ::-1] if turns[r, c] >= 4 else image)

    def tiles() -> Iterator[np.ndarray]:
        for r in range(per_side):
            for c in range(per_side):
                yield crop(r, c)

    def half_tiles() -> Iterator[np.ndarray]:  # level 1: 2 x 2 crops -> one 256 tile
        for r in range(0, per_side, 2):
            for c in range(0, per_side, 2):
                block = np.zeros((2 * TILE, 2 * TILE, 3), np.uint8)
                for dr in range(2):
                    for dc in range(2):
                        if r + dr < per_side and c + dc < per_side:
                            block[dr * TILE : (dr + 1) * TILE, dc * TILE : (dc + 1) * TILE] = crop(r + dr, c + dc)
                yield np.ascontiguousarray(block[::2, ::2])

    shape = (per_side * TILE, per_side * TILE, 3)
    options = {"tile": (TILE, TILE), "compression": "zlib", "compressionargs": {"level": 1}, "photometric": "rgb"}
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(tiles(), shape=shape, dtype=np.uint8, subifds=1, **options)
        tif.write(half_tiles(), shape=(shape[0] // 2, shape[1] // 2, 3), dtype=np.uint8, subfiletype=1, **options)


def peak_memory_gb() -> float:
    """This process's own peak resident memory (``VmHWM``, Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def run_one(args: argparse.Namespace) -> None:
    """Predict one slide in this process; print a json line with size, objects, seconds and peak memory.

    ``--path plain`` is ``instseg.Predictor.predict_whole`` (float32, BatchNorm unfolded, as shipped);
    ``--path fast`` is ``instseg.inference.cpu_fast.FastCpuPredictor`` (BatchNorm folded, bfloat16 network where
    the CPU has it natively). CPU seconds (user + system, both threads) are printed beside wall seconds because
    the other core may be busy with other work.
    """
    import torch

    import instseg
    from instseg.inference.cpu_fast import FastCpuPredictor
    from instseg.inference.slides import open_slide, predict_slide

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    model = instseg.load_model(args.checkpoint)
    if args.path == "fast":
        predict: Any = FastCpuPredictor(model, precision=args.precision)
        label = f"fast ({predict.precision}, BatchNorm folded)"
    else:
        predict = instseg.Predictor(model, auto_tile_above=None).predict_whole
        label = "plain (float32)"
    model_seconds = [0.0, 0.0]

    def timed_predict(tile: np.ndarray) -> instseg.Instances:
        tick, cpu_tick = time.perf_counter(), time.process_time()
        found = predict(tile)
        model_seconds[0] += time.perf_counter() - tick
        model_seconds[1] += time.process_time() - cpu_tick
        return found

    start, cpu_start = time.perf_counter(), time.process_time()
    with open_slide(args.slide) as source:
        summary = predict_slide(
            timed_predict,
            source,
            args.out,
            tile=args.tile,
            overlap=args.overlap,
            progress=False,
            overwrite=True,
        )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    record = {"path": label, "size": summary.height, "tiles": summary.tiles, "objects": summary.objects}
    record |= {"seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1)}
    record |= {"model_seconds": round(model_seconds[0], 1), "model_cpu_seconds": round(model_seconds[1], 1)}
    print(json.dumps({**record, "peak_rss_gb": round(peak_memory_gb(), 2), "load_avg_1min": os.getloadavg()[0]}))


def label_agreement(first: Path, second: Path, strip: int = 1024) -> dict[str, float]:
    """How far two label images (``labels.zarr`` of two runs on one slide) agree: objects of ``first`` matched
    one to one by an object of ``second`` at IoU >= 0.5, the mean IoU of the matches, and the foreground IoU.

    Read in strips of ``strip`` rows (pair counts accumulated), so the comparison's memory stays bounded too.
    """
    import zarr

    a_map, b_map = zarr.open_array(str(first), mode="r"), zarr.open_array(str(second), mode="r")
    pairs: dict[tuple[int, int], int] = {}
    area_a: dict[int, int] = {}
    area_b: dict[int, int] = {}
    fg_inter = fg_union = 0
    for y in range(0, a_map.shape[0], strip):
        a = np.asarray(a_map[y : y + strip]).ravel().astype(np.int64)
        b = np.asarray(b_map[y : y + strip]).ravel().astype(np.int64)
        fg_inter += int(np.count_nonzero((a > 0) & (b > 0)))
        fg_union += int(np.count_nonzero((a > 0) | (b > 0)))
        for ids, areas in ((a, area_a), (b, area_b)):
            found, counts = np.unique(ids[ids > 0], return_counts=True)
            for i, n in zip(found.tolist(), counts.tolist(), strict=True):
                areas[i] = areas.get(i, 0) + n
        both = (a > 0) & (b > 0)
        keys, counts = np.unique(a[both] * (1 << 32) + b[both], return_counts=True)
        for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
            pair = (key >> 32, key & 0xFFFFFFFF)
            pairs[pair] = pairs.get(pair, 0) + n
    ious = [n / (area_a[i] + area_b[j] - n) for (i, j), n in pairs.items()]
    matched = [iou for iou in ious if iou >= 0.5]  # IoU > 0.5 pairs are one to one
    recall, precision = len(matched) / max(len(area_a), 1), len(matched) / max(len(area_b), 1)
    return {
        "objects_first": len(area_a),
        "objects_second": len(area_b),
        "matched_iou50": len(matched),
        "f1_iou50": round(2 * recall * precision / max(recall + precision, 1e-12), 4),
        "mean_iou_matched": round(float(np.mean(matched)) if matched else 0.0, 4),
        "foreground_iou": round(fg_inter / max(fg_union, 1), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192])
    parser.add_argument("--work", type=Path, default=None, help="folder for the slides and outputs (default: temp)")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped default model")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--paths", nargs="+", choices=["plain", "fast"], default=["fast"], help="predictors to run (both: compared)"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "bfloat16", "float32"], help="--paths fast")
    parser.add_argument("--path", default="fast", help=argparse.SUPPRESS)
    parser.add_argument("--slide", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.slide is not None:
        run_one(args)
        return
    if args.data is None:
        parser.error("--data DSB2018_DIR is needed to build the slides")
    work = args.work or Path(tempfile.mkdtemp(prefix="slide-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"tiles {args.tile} px, overlap {args.overlap} px, {args.threads} threads; work folder {work}")
    for size in args.sizes:
        slide = work / f"slide_{size}.tif"
        if not slide.exists():
            start = time.perf_counter()
            build_slide(args.data, size, slide)
            print(f"built {slide.name} ({slide.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s")
        outs = {}
        for path in args.paths:
            outs[path] = work / f"out_{size}_{path}"
            command = [sys.executable, __file__, "--slide", str(slide), "--out", str(outs[path]), "--path", path]
            command += ["--tile", str(args.tile), "--overlap", str(args.overlap), "--threads", str(args.threads)]
            command += ["--precision", args.precision]
            command += ["--checkpoint", args.checkpoint] if args.checkpoint else []
            subprocess.run(command, check=True)
        if len(outs) == 2:
            agreement = label_agreement(outs["plain"] / "labels.zarr", outs["fast"] / "labels.zarr")
            print(json.dumps({"size": size, "agreement plain vs fast": agreement}))


if __name__ == "__main__":
    main()
