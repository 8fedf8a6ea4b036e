"""COCO mask-AP speed: instseg (faster-coco-eval, what ``instseg eval`` runs) against pycocotools, same files.

Builds a synthetic ground truth (disks of random size, one category by default) and a results file of
``--dets`` detections per image (jittered copies of the objects plus false positives, random scores), both
with compressed-RLE masks, then times from the json files to the figures:

- instseg: ``load_ground_truth`` + ``load_results`` + ``validate_results`` + ``coco_ap(..., "segm")``;
- pycocotools: ``COCO`` + ``loadRes`` + ``COCOeval`` evaluate / accumulate / summarize.

It prints both times, their ratio and both APs (which must agree to 1e-6; the exit code is 1 otherwise).
Usage: ``python benchmarks/eval_speed.py [--images 500 --dets 100]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def _disk_rles(cy: np.ndarray, cx: np.ndarray, r: np.ndarray, h: int, w: int) -> list[dict[str, Any]]:
    """Compressed RLEs of disks drawn as 24-gons by pycocotools (no dense masks needed)."""
    angles = np.linspace(0.0, 2.0 * np.pi, 24, endpoint=False)
    xs = np.clip(cx[:, None] + r[:, None] * np.cos(angles)[None], 0, w)  # [N, 24]
    ys = np.clip(cy[:, None] + r[:, None] * np.sin(angles)[None], 0, h)
    polys = np.stack([xs, ys], axis=2).reshape(len(cy), -1)  # [N, 48] as x0, y0, x1, y1, ...
    rles = mask_utils.frPyObjects([p.tolist() for p in polys], h, w)  # one RLE per polygon
    return [{"size": [h, w], "counts": rle["counts"].decode("ascii")} for rle in rles]


def make_files(folder: Path, images: int, dets: int, size: int, categories: int, seed: int) -> tuple[Path, Path]:
    """Write ``gt.json`` and ``results.json`` (segmentation + score, no bbox) into ``folder``."""
    rng = np.random.default_rng(seed)
    h = w = size
    gt: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    gt["categories"] = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(categories)]
    results: list[dict[str, Any]] = []
    for i in range(images):
        image_id = i + 1
        gt["images"].append({"id": image_id, "file_name": f"{image_id:06d}.png", "height": h, "width": w})
        n = int(rng.integers(dets // 4, dets // 2 + 1))
        cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
        r = rng.uniform(3, size / 10, n)
        cats = rng.integers(1, categories + 1, n)
        for rle, c in zip(_disk_rles(cy, cx, r, h, w), cats, strict=True):
            area = int(mask_utils.area(rle))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": int(c),
                    "segmentation": rle,
                    "area": area,
                    "bbox": bbox,
                    "iscrowd": 0,
                }
            )
        keep = rng.random(n) < 0.85  # some objects are missed
        m = int(keep.sum())
        jitter = rng.normal(0.0, 1.5, (3, m))
        fp = dets - m  # the rest are false positives
        dcy = np.concatenate([cy[keep] + jitter[0], rng.uniform(0, h, fp)])
        dcx = np.concatenate([cx[keep] + jitter[1], rng.uniform(0, w, fp)])
        dr = np.concatenate([np.maximum(r[keep] + jitter[2], 2.0), rng.uniform(3, size / 10, fp)])
        dcat = np.concatenate([cats[keep], rng.integers(1, categories + 1, fp)])
        scores = rng.random(dets)
        for rle, c, s in zip(_disk_rles(dcy, dcx, dr, h, w), dcat, scores, strict=True):
            results.append({"image_id": image_id, "category_id": int(c), "segmentation": rle, "score": float(s)})
    gt_path, res_path = folder / "gt.json", folder / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def run_instseg(gt_path: Path, res_path: Path, max_dets: int) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds (all threads) and segm figures of instseg's path (files -> figures)."""
    from instseg.eval.coco_metrics import coco_ap
    from instseg.eval.results import load_ground_truth, load_results, validate_results

    t0, c0 = time.perf_counter(), time.process_time()
    gt = load_ground_truth(gt_path)
    results = validate_results(load_results(res_path), gt, str(res_path))
    figures = coco_ap(gt, results, "segm", max_dets)
    return time.perf_counter() - t0, time.process_time() - c0, figures


def run_pycocotools(gt_path: Path, res_path: Path, max_dets: int) -> tuple[float, float, float]:
    """Wall and CPU seconds and segm AP of pycocotools (files -> figures), its output silenced."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(res_path))
        ev = COCOeval(coco_gt, coco_dt, "segm")
        ev.params.maxDets = sorted({1, 10, max_dets})
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = ev.params.maxDets.index(max_dets)  # read AP at max_dets (summarize() hard-codes 100 for stats[0])
    precision = ev.eval["precision"][:, :, :, 0, m]
    return seconds, cpu, float(np.mean(precision[precision > -1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--dets", type=int, default=100, help="detections per image")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--categories", type=int, default=1)
    parser.add_argument("--max-dets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        gt_path, res_path = make_files(Path(tmp), args.images, args.dets, args.size, args.categories, args.seed)
        print(
            f"data: {args.images} images {args.size}x{args.size}, {args.dets} detections/image, "
            f"{args.categories} categories (built in {time.perf_counter() - t0:.1f}s)"
        )
        t_ours, cpu_ours, figures = run_instseg(gt_path, res_path, args.max_dets)
        t_ref, cpu_ref, ap_ref = run_pycocotools(gt_path, res_path, args.max_dets)
    ap_ours = figures["segm/AP"]
    print(f"instseg (faster-coco-eval): {t_ours:7.2f} s wall {cpu_ours:7.2f} s cpu   segm/AP = {ap_ours:.6f}")
    print(f"pycocotools COCOeval:       {t_ref:7.2f} s wall {cpu_ref:7.2f} s cpu   segm/AP = {ap_ref:.6f}")
    print(
        f"speed-up: {t_ref / t_ours:.1f}x wall, {cpu_ref / cpu_ours:.1f}x cpu   "
        f"|AP difference| = {abs(ap_ours - ap_ref):.2e}"
    )
    if abs(ap_ours - ap_ref) > 1e-6:
        print("APs differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
