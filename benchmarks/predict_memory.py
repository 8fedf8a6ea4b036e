"""Peak memory and time of ``instseg predict`` (predict + write results json, label map, overlay) on a large mosaic.

A ``--size`` x ``--size`` mosaic (default 4096) of the most crowded 256x256 dsb2018 images (train and val, each
used as often as needed) is written to ``OUT/mosaic.png``; a fresh Python process then runs ``instseg predict
mosaic.png --out OUT/predictions`` in-process with the shipped default model and prints its seconds and its own
peak resident memory (``VmHWM``). Goal: memory independent of objects x height x width, i.e. close to what the
image, its label map and one tile's work need, whatever the number of objects.

    python benchmarks/predict_memory.py --data DSB2018_DIR [--size 4096] [--tile N] [--out DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def crowded_mosaic(data: Path, size: int, pool: int = 64) -> tuple[np.ndarray, int]:
    """``size`` x ``size`` grid of the ``pool`` most crowded 256x256 dsb2018 images (repeated in order) and the
    number of annotated nuclei it holds."""
    from instseg.data.image_io import read_image, to_rgb_uint8

    candidates = []
    for split in ("train", "val"):
        gt = json.loads((data / "annotations" / f"instances_{split}.json").read_text())
        counts = Counter(int(a["image_id"]) for a in gt["annotations"])
        for im in gt["images"]:
            if im["width"] == 256 and im["height"] == 256:
                candidates.append((-counts[int(im["id"])], im["file_name"]))
    candidates.sort()
    chosen = candidates[:pool]
    per_side = size // 256
    tiles = [to_rgb_uint8(read_image(data / "images" / name)) for _, name in chosen]
    grid = [tiles[i % len(tiles)] for i in range(per_side * per_side)]
    nuclei = sum(-chosen[i % len(chosen)][0] for i in range(per_side * per_side))
    rows = [np.concatenate(grid[r * per_side : (r + 1) * per_side], axis=1) for r in range(per_side)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)), nuclei


def peak_memory_gb() -> float:
    """This process's own peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it does not inherit the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(image: Path, out: Path, threads: int, tile: int | None) -> None:
    """Run ``instseg predict IMAGE --out OUT [--tile N]`` in this process; print seconds, objects, peak memory."""
    import torch

    from instseg.cli.main import app

    torch.set_num_threads(threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    app(["predict", str(image), "--out", str(out), *(["--tile", str(tile)] if tile else [])], standalone_mode=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    results = json.loads((out / "results.json").read_text())
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    print(f"  {len(results)} objects predicted and written in {seconds:.1f} s wall, {cpu:.1f} s CPU (all threads)")
    print(f"  files: {', '.join(written)}")
    print(f"  peak resident memory (VmHWM): {peak_memory_gb():.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096, help="mosaic side in pixels (a multiple of 256)")
    parser.add_argument("--data", type=Path, default=None, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the mosaic and predictions (new)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tile", type=int, default=None, help="passed to instseg predict (default: its own rule)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)  # internal: the image
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.out, args.threads, args.tile)
        return
    if args.data is None:
        parser.error("--data DSB2018_DIR is needed (the mosaic is built from its 256x256 images)")
    if args.size % 256:
        parser.error(f"--size must be a multiple of 256, got {args.size}")
    out = args.out or Path(tempfile.mkdtemp(prefix="predict_memory_"))
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    mosaic, nuclei = crowded_mosaic(args.data, args.size)
    image_path = out / "mosaic.png"
    Image.fromarray(mosaic).save(image_path)
    print(f"{args.size}x{args.size} mosaic of crowded dsb2018 nuclei ({nuclei} annotated) -> {image_path}")
    command = [sys.executable, __file__, "--child", str(image_path), "--out", str(out / "predictions")]
    command += ["--threads", str(args.threads), *(["--tile", str(args.tile)] if args.tile else [])]
    subprocess.run(command, check=True)  # a fresh process: its peak memory is its own


if __name__ == "__main__":
    main()
