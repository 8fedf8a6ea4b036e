"""Ultralytics side of ``benchmarks/vs_yolo.py``; runs ONLY in the separate benchmark environment.

Ultralytics is AGPL-3.0 and never a dependency of instseg: ``vs_yolo.py`` creates its own virtual environment
for it and runs this file with that interpreter, one subcommand per process:

    train    YOLO11n-seg from its yaml (no pretrained weights) for a wall-clock budget (Ultralytics' ``time=``)
    predict  a COCO results json for every image of a COCO annotation file (image ids kept, masks as RLE)
    latency  PyTorch and onnxruntime latency of one image (Ultralytics' own pre- and post-processing included)
    throughput  seconds per training batch of YOLO11n-seg from scratch (``benchmarks/train_throughput.py``)

Each subcommand writes its figures to the json named by ``--result``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

# no network: no hub/analytics calls, no online checks, no automatic pip installs (set before importing ultralytics)
os.environ.setdefault("YOLO_OFFLINE", "1")


def set_threads(threads: int) -> None:
    """Fix torch's intra-op threads; Ultralytics' device selection resets them to ``min(8, cores - 1)`` unless told."""
    import torch
    import ultralytics.utils.torch_utils as torch_utils

    torch_utils.NUM_THREADS = threads  # what select_device() passes to torch.set_num_threads
    torch.set_num_threads(threads)


def pin_onnxruntime_threads(threads: int) -> None:
    """Make every onnxruntime session Ultralytics opens use ``threads`` intra-op threads (it sets none itself)."""
    import onnxruntime

    base = onnxruntime.InferenceSession

    def session(path: Any, sess_options: Any = None, *args: Any, **kwargs: Any) -> Any:
        options = sess_options or onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return base(path, options, *args, **kwargs)

    onnxruntime.InferenceSession = session  # type: ignore[misc]


def parameter_count(model: Any) -> int:
    """Parameters of the underlying ``nn.Module`` (unfused, as trained)."""
    return int(sum(p.numel() for p in model.model.parameters()))


def scratch_cpu_training(args: argparse.Namespace) -> dict[str, Any]:
    """Ultralytics ``train`` settings shared by every run here: from scratch on the CPU, offline, into ``--out``."""
    return {
        "data": args.data,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "device": "cpu",
        "amp": False,  # the AMP check would download yolo11n.pt; CPU trains in fp32 anyway
        "plots": False,  # plots fetch a font from the network
        "val": False,  # validate only after the last epoch, inside the budget
        "pretrained": False,
        "project": str(Path(args.out).resolve().parent),
        "name": Path(args.out).name,
        "exist_ok": True,
        "seed": 0,
        "verbose": False,
    }


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train from scratch for ``--minutes`` of Ultralytics' own clock; count the optimiser steps done."""
    import torch
    from ultralytics import YOLO

    set_threads(args.threads)
    model = YOLO(args.model)  # a .yaml: architecture only, randomly initialised
    steps = {"batches": 0, "threads": 0}

    def on_train_batch_end(trainer: Any) -> None:
        steps["batches"] += 1
        steps["threads"] = torch.get_num_threads()

    model.add_callback("on_train_batch_end", on_train_batch_end)
    start = time.perf_counter()
    model.train(
        epochs=args.max_epochs,  # an upper bound: `time` re-plans the epochs (and the LR schedule) to fit the budget
        time=args.minutes / 60.0,
        workers=args.workers,
        **scratch_cpu_training(args),
    )
    seconds = time.perf_counter() - start
    trainer = model.trainer
    weights = Path(trainer.last)
    return {
        "weights": str(weights),
        "params": parameter_count(YOLO(str(weights))),
        "train_seconds": seconds,
        "epochs": int(trainer.epoch) + 1,
        "steps": steps["batches"],
        "batch": int(trainer.batch_size),
        "batches_per_epoch": len(trainer.train_loader),
        "torch_threads": steps["threads"],
    }


def predict(args: argparse.Namespace) -> dict[str, Any]:
    """COCO results for every image of ``--gt``; image ids come from its ``file_name``s, masks at full resolution."""
    from ultralytics import YOLO

    from instseg.structures.masks import masks_to_rles

    set_threads(args.threads)
    model = YOLO(args.weights, task="segment")
    gt = json.loads(Path(args.gt).read_text())
    category_id = int(gt["categories"][0]["id"])  # one class (YOLO class 0 = first category, as instseg converts)
    results: list[dict[str, Any]] = []
    start = time.perf_counter()
    for image in gt["images"]:
        out = model.predict(
            str(Path(args.images) / image["file_name"]),
            imgsz=args.imgsz,
            conf=args.conf,
            max_det=args.max_det,
            retina_masks=True,  # masks at the image's own size, as the ground truth
            device="cpu",
            verbose=False,
        )[0]
        if out.masks is None:
            continue
        masks = out.masks.data.cpu().numpy() > 0.5  # [N, H, W] bool
        scores = out.boxes.conf.cpu().numpy()
        classes = out.boxes.cls.cpu().numpy().astype(int)
        if masks.shape[1:] != (image["height"], image["width"]):
            raise ValueError(f"{image['file_name']}: masks {masks.shape[1:]} differ from the image size")
        for rle, score, cls in zip(masks_to_rles(masks), scores, classes, strict=True):
            cat = int(gt["categories"][cls]["id"]) if len(gt["categories"]) > 1 else category_id
            results.append({"image_id": image["id"], "category_id": cat, "segmentation": rle, "score": float(score)})
    Path(args.pred).write_text(json.dumps(results))
    return {"pred": args.pred, "detections": len(results), "seconds": time.perf_counter() - start}


def latency(args: argparse.Namespace) -> dict[str, Any]:
    """Median latency of ``model.predict`` on one image, PyTorch weights then the exported ONNX file."""
    import cv2
    from ultralytics import YOLO

    set_threads(args.threads)
    pin_onnxruntime_threads(args.threads)
    image = cv2.imread(args.image)  # BGR, as Ultralytics expects numpy input
    settings = {"imgsz": args.size, "device": "cpu", "verbose": False, "retina_masks": True}

    def timed(model: Any) -> tuple[float, list[float], int]:
        for _ in range(args.warmup):
            model.predict(image, **settings)
        times, count = [], 0
        for _ in range(args.runs):
            start = time.perf_counter()
            out = model.predict(image, **settings)[0]
            times.append(time.perf_counter() - start)
            count = 0 if out.masks is None else len(out.masks)
        return statistics.median(times), times, count

    model = YOLO(args.weights, task="segment")
    torch_median, torch_times, torch_count = timed(model)
    onnx_path = model.export(format="onnx", imgsz=args.size, dynamic=False, device="cpu")
    ort_median, ort_times, ort_count = timed(YOLO(onnx_path, task="segment"))
    import torch

    return {
        "torch_ms": 1000 * torch_median,
        "torch_ms_all": [1000 * t for t in torch_times],
        "ort_ms": 1000 * ort_median,
        "ort_ms_all": [1000 * t for t in ort_times],
        "instances_torch": torch_count,
        "instances_ort": ort_count,
        "onnx": str(onnx_path),
        "torch_threads": torch.get_num_threads(),
    }


class EnoughBatches(Exception):
    """Raised by the batch callback to end a throughput run once its batches are timed."""


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds between consecutive training-batch ends (data loading included) over ``--batches`` batches."""
    from ultralytics import YOLO

    set_threads(args.threads)
    model = YOLO(args.model)
    ends: list[float] = []

    def on_train_batch_end(trainer: Any) -> None:
        ends.append(time.perf_counter())
        if len(ends) > args.batches:
            raise EnoughBatches

    model.add_callback("on_train_batch_end", on_train_batch_end)
    with contextlib.suppress(EnoughBatches):
        model.train(epochs=100, workers=0, **scratch_cpu_training(args))
    steps = [later - earlier for earlier, later in itertools.pairwise(ends)][args.warmup :]
    step_seconds = statistics.fmean(steps)
    return {
        "model": args.model,
        "batch": args.batch,
        "imgsz": args.imgsz,
        "steps_timed": len(steps),
        "step_seconds": step_seconds,
        "images_per_s": args.batch / step_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train YOLO11n-seg from scratch for a time budget")
    p.add_argument("--model", default="yolo11n-seg.yaml")
    p.add_argument("--data", required=True, help="Ultralytics dataset yaml")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--max-epochs", type=int, default=10000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=0)
    p = sub.add_parser("throughput", help="time training batches of YOLO11n-seg from scratch")
    p.add_argument("--model", default="yolo11n-seg.yaml")
    p.add_argument("--data", required=True, help="Ultralytics dataset yaml")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--batches", type=int, default=23, help="batches to run (warm-up included)")
    p.add_argument("--warmup", type=int, default=3, help="first batch intervals left out")
    p = sub.add_parser("predict", help="COCO results json for a COCO annotation file")
    p.add_argument("--weights", required=True)
    p.add_argument("--gt", required=True, help="COCO annotation json (image ids and file names)")
    p.add_argument("--images", required=True)
    p.add_argument("--pred", required=True, help="results json to write")
    p.add_argument("--imgsz", type=int, default=512)
    p.add_argument("--conf", type=float, default=0.001)
    p.add_argument("--max-det", type=int, default=1000)
    p = sub.add_parser("latency", help="PyTorch and onnxruntime latency on one image")
    p.add_argument("--weights", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    for p in sub.choices.values():
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--result", required=True, help="json file for the figures")
    args = parser.parse_args()
    commands = {"train": train, "throughput": throughput, "predict": predict, "latency": latency}
    figures = commands[args.command](args)
    Path(args.result).write_text(json.dumps(figures, indent=1))
    print(json.dumps({k: v for k, v in figures.items() if not k.endswith("_all")}))


if __name__ == "__main__":
    main()
