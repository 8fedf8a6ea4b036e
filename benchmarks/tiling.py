"""Tiled prediction of large images: agreement with one whole-image pass, and peak memory on a huge mosaic.

1. A 2048x2048 mosaic of dsb2018 val images (the 256x256 fluorescence ones, 8 x 8; or the shipped sample
   images without the data set) is predicted in one pass and tile by tile; the tiled objects are matched to
   the whole-image objects (one-to-one, IoU >= 0.5) and F1@0.5 between the two is printed (goal >= 0.99).
2. An 8192x8192 mosaic (the 2048 mosaic 4 x 4) is predicted tile by tile in a fresh process whose peak
   resident memory is printed (goal <= 3 GB).

    python benchmarks/tiling.py [--checkpoint CKPT] [--data DSB2018_DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def mosaic_2048(data: Path | None) -> tuple[np.ndarray, str]:
    """8 x 8 grid of 256x256 nucleus images (dsb2018 val when given, else the shipped samples, repeated)."""
    from instseg.data.image_io import read_image

    if data is not None:
        gt = json.loads((data / "annotations" / "instances_val.json").read_text())
        names = sorted(im["file_name"] for im in gt["images"] if im["width"] == 256 and im["height"] == 256)
        folder, source = data / "images", f"{len(names[:64])} dsb2018 val images"
    else:
        folder = ROOT / "examples" / "dsb2018_sample" / "images"
        names = sorted(p.name for p in folder.glob("*.png") if read_image(p).shape[:2] == (256, 256))
        source = "the shipped 256x256 sample images"
    tiles = [read_image(folder / n) for n in names[:64]]
    grid = [tiles[i % len(tiles)] for i in range(64)]
    rows = [np.concatenate(grid[r * 8 : (r + 1) * 8], axis=1) for r in range(8)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)), source


def agreement(args: argparse.Namespace) -> None:
    """Whole-image vs tiled prediction of the 2048 mosaic: object counts, F1@0.5, times."""
    import instseg
    from instseg.eval import evaluate_results
    from instseg.inference.predictor import Predictor

    image, source = mosaic_2048(args.data)
    model = instseg.load_model(args.checkpoint)
    whole_predictor = Predictor(model, auto_tile_above=None)
    tiled_predictor = Predictor(model, tile_size=args.tile, tile_overlap=args.overlap)
    start = time.perf_counter()
    whole = whole_predictor.predict_whole(image).compact()
    whole_s = time.perf_counter() - start
    start = time.perf_counter()
    tiled = tiled_predictor.predict_large(image)
    tiled_s = time.perf_counter() - start

    h, w = image.shape[:2]
    gt = {
        "images": [{"id": 1, "file_name": "mosaic.png", "height": h, "width": w}],
        "categories": [{"id": 1, "name": "object"}],
        "annotations": [
            {**r, "id": i + 1, "iscrowd": 0, "category_id": 1} for i, r in enumerate(whole.to_coco(1, [1]))
        ],
    }
    metrics = evaluate_results(gt, tiled.to_coco(1, [1]), max_dets=100000, score_thr=0.0)
    print(f"2048x2048 mosaic of {source}; tiles {args.tile} px, overlap {args.overlap} px")
    print(f"  whole image: {len(whole)} objects in {whole_s:.1f} s; tiled: {len(tiled)} objects in {tiled_s:.1f} s")
    print(f"  F1@0.5 tiled vs whole: {metrics['match/F1@0.5']:.4f} (goal >= 0.99)")


def peak_memory_gb() -> float:
    """This process's own peak resident memory: ``VmHWM`` on Linux (``ru_maxrss`` survives fork + exec on Linux,
    so a child started by a process that had used more would report its parent's peak)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def big_mosaic(args: argparse.Namespace) -> None:
    """Tiled prediction of the 8192 mosaic; prints objects, time and this process's peak resident memory."""
    import instseg
    from instseg.inference.predictor import Predictor

    tile, _ = mosaic_2048(args.data)
    image = np.ascontiguousarray(np.tile(tile, (4, 4, 1)))
    model = instseg.load_model(args.checkpoint)
    start = time.perf_counter()
    found = Predictor(model, tile_size=args.big_tile, tile_overlap=args.overlap).predict_large(image)
    results = found.to_coco(1, [1])
    seconds = time.perf_counter() - start
    peak_gb = peak_memory_gb()
    print(f"8192x8192 mosaic, tiles {args.big_tile} px: {len(found)} objects, {len(results)} RLEs in {seconds:.0f} s")
    print(f"  peak resident memory: {peak_gb:.2f} GB (goal <= 3 GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped default model")
    parser.add_argument("--data", type=Path, default=None, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--big-tile", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", choices=["all", "agreement", "big"], default="all")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.part in ("all", "agreement"):
        agreement(args)
    if args.part == "big":
        big_mosaic(args)
    elif args.part == "all":  # a fresh process, so that its peak memory is the big run's own
        command = [sys.executable, __file__, "--part", "big", "--overlap", str(args.overlap)]
        command += ["--big-tile", str(args.big_tile), "--threads", str(args.threads)]
        command += ["--checkpoint", args.checkpoint] if args.checkpoint else []
        command += ["--data", str(args.data)] if args.data else []
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
