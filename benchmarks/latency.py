"""CPU latencies: the shipped default model at 512x512, and Mask R-CNN R50-FPN against torchvision's.

``--which default``: the shipped default model (or ``--checkpoint``) on a 512x512 crop of real nuclei (the
sample images in ``examples/``), numpy image in, ``Instances`` out, post-processing included (goal: median
<= 150 ms on a 2-core CPU).

``--which maskrcnn``: instseg's Mask R-CNN R50-FPN against torchvision's, same weights, same detections.

``--which topdown``: the ResNet-18 top-down family (Mask R-CNN, PANet, Cascade, HTC, CenterMask) with random
weights, score threshold 0 and the same detection cap on the same 640x640 nuclei image, so each does its full
head and pasting work on exactly ``--detections`` objects: what the architecture costs, not what a trained model
finds (a trained model's count depends on the image).

Both models get torchvision's randomly initialised weights (mapped onto instseg's module names), the same
640x640 image, ``box_score_thresh=0`` and the same detection cap, so both return exactly ``--detections``
objects and do the same head and pasting work. Timed end to end, pre- and post-processing included: numpy
uint8 image in, thresholded full-image masks out. Prints the median of ``--runs`` timed runs after warm-up
(runs alternate between the two models, in alternating order, so that load changes on the machine and
cache effects hit both alike) and the ratio
instseg / torchvision (goal: <= 1.0).

    python benchmarks/latency.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn

import instseg
from instseg.methods.mask_rcnn import MaskRCNN, load_torchvision_weights


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = fn()
    return time.perf_counter() - start, count


def nuclei_image(size: int) -> np.ndarray:
    """A ``size x size`` uint8 RGB image of real nuclei: the shipped sample images tiled side by side."""
    from instseg.data.image_io import read_image

    folder = Path(__file__).resolve().parents[1] / "examples" / "dsb2018_sample" / "images"
    tiles = [read_image(p) for p in sorted(folder.glob("*.png"))]
    dark = [t for t in tiles if t.shape[0] == 256 and t.shape[1] == 256]  # the two 256x256 fluorescence images
    row = np.concatenate([dark[0], dark[1]], axis=1)
    canvas = np.concatenate([row, row[:, ::-1]], axis=0)
    reps = -(-size // canvas.shape[0])
    return np.ascontiguousarray(np.tile(canvas, (reps, reps, 1))[:size, :size])


def default_model_latency(args: argparse.Namespace) -> dict[str, float]:
    """Median latency of the default model (or ``--checkpoint``) on a real-nuclei image, post-processing included."""
    model = instseg.load_model(args.checkpoint)
    image = nuclei_image(args.default_size)
    for _ in range(args.warmup):
        model.predict(image)
    times, counts = [], []
    for _ in range(args.runs):
        seconds, count = _timed(lambda: len(model.predict(image)))
        times.append(seconds)
        counts.append(count)
    median = statistics.median(times)
    source = args.checkpoint or "shipped default model"
    print(
        f"{source}: CPU, {args.threads} threads, {args.default_size}x{args.default_size} nuclei image, "
        f"{counts[0]} instances, median of {args.runs} runs after {args.warmup} warm-up"
    )
    print(
        f"median {1000 * median:.1f} ms  min {1000 * min(times):.1f} ms  max {1000 * max(times):.1f} ms (goal <= 150)"
    )
    return {"default_median_s": median}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the chosen benchmarks and print their tables; returns the medians (seconds) and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--which", choices=["default", "maskrcnn", "topdown", "all"], default="all")
    parser.add_argument("--checkpoint", default=None, help="checkpoint for --which default (default: shipped model)")
    parser.add_argument("--default-size", type=int, default=512, help="image side for the default model")
    parser.add_argument("--size", type=int, default=640, help="image side in pixels (no resize in either model)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per model first")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--detections", type=int, default=100, help="detections per image, forced in both models")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    figures: dict[str, float] = {}
    if args.which in ("default", "all"):
        figures.update(default_model_latency(args))
    if args.which in ("maskrcnn", "all"):
        figures.update(mask_rcnn_latency(args))
    if args.which == "topdown":
        figures.update(top_down_latency(args))
    return figures


TOP_DOWN_R18 = ("mask_rcnn", "panet", "cascade_mask_rcnn", "htc", "centermask")


def top_down_latency(args: argparse.Namespace) -> dict[str, float]:
    """Median latency of each ResNet-18-FPN top-down model at ``--size``, forced to ``--detections`` objects."""
    image = nuclei_image(args.size)
    print(
        f"top-down R18-FPN, random weights, CPU, {args.threads} threads, {args.size}x{args.size} nuclei image, "
        f"{args.detections} detections, median of {args.runs} runs after {args.warmup} warm-up"
    )
    print(f"{'model':<34}{'median ms':>12}{'min ms':>10}{'max ms':>10}")
    medians: dict[str, float] = {}
    for family in TOP_DOWN_R18:
        name = f"{family}_resnet18_fpn"
        cap = (
            {"score_threshold": 0.0, "max_detections": args.detections}
            if family == "centermask"
            else {"box_score_thresh": 0.0, "box_detections_per_img": args.detections}
        )
        torch.manual_seed(0)
        model = instseg.create_model(name, num_classes=1, min_size=None, max_size=args.size, **cap).eval()
        for _ in range(args.warmup):
            model.predict(image)
        times = []
        for _ in range(args.runs):
            seconds, count = _timed(lambda: len(model.predict(image)))  # noqa: B023 (called at once)
            if count != args.detections:
                raise RuntimeError(f"{name} returned {count} detections, expected {args.detections}")
            times.append(seconds)
        medians[name] = statistics.median(times)
        print(f"{name:<34}{1000 * medians[name]:>12.1f}{1000 * min(times):>10.1f}{1000 * max(times):>10.1f}")
    return {f"{k}_s": v for k, v in medians.items()}


def mask_rcnn_latency(args: argparse.Namespace) -> dict[str, float]:
    """instseg's Mask R-CNN R50-FPN against torchvision's on one image: medians and their ratio."""
    settings = {
        "min_size": args.size,
        "max_size": args.size,
        "box_score_thresh": 0.0,
        "box_detections_per_img": args.detections,
    }
    torch.manual_seed(0)
    reference = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **settings).eval()
    ours = instseg.create_model("mask_rcnn_resnet50_fpn", num_classes=90, **settings)
    assert isinstance(ours, MaskRCNN)
    load_torchvision_weights(ours, reference.state_dict())
    ours.eval()
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)

    @torch.no_grad()
    def run_torchvision() -> int:
        x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        out = reference([x])[0]
        masks = out["masks"][:, 0] > 0.5  # [N, H, W] bool, as instseg returns
        return int(masks.shape[0])

    def run_instseg() -> int:
        return len(ours.predict(image))

    runners = {"instseg": run_instseg, "torchvision": run_torchvision}
    for fn in runners.values():
        for _ in range(args.warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in range(args.runs):
        # alternate which model goes first, so that neither always runs on the caches the other left
        for name, fn in list(runners.items())[:: 1 if run % 2 == 0 else -1]:
            seconds, count = _timed(fn)
            if count != args.detections:
                raise RuntimeError(f"{name} returned {count} detections, expected {args.detections}")
            times[name].append(seconds)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"Mask R-CNN R50-FPN, CPU, {args.threads} threads, {args.size}x{args.size} image, "
        f"{args.detections} detections, median of {args.runs} runs after {args.warmup} warm-up"
    )
    print(f"{'model':<14}{'median ms':>12}{'min ms':>10}{'max ms':>10}")
    for name, values in times.items():
        print(f"{name:<14}{1000 * medians[name]:>12.1f}{1000 * min(values):>10.1f}{1000 * max(values):>10.1f}")
    ratio = medians["instseg"] / medians["torchvision"]
    print(f"ratio instseg / torchvision: {ratio:.3f} (goal <= 1.0)")
    return {**{f"{k}_s": v for k, v in medians.items()}, "ratio": ratio}


if __name__ == "__main__":
    main()
