"""Exported ONNX files against PyTorch: whole-prediction latency (image in, final masks out) on a 640 x 640 real
nuclei image, with onnxruntime and OpenVINO at one and two threads, and the dsb2018 val mask AP of the exported
shipped default model against the same model in PyTorch.

    python benchmarks/export_speed.py --data ../shared/data/dsb2018 --out /tmp/export_bench \
        [--models default yolact_light_mobilenetv3 ...] [--repeats 10] [--ap]

``default`` is the shipped trained model, a file path a trained checkpoint; other names are built with random
weights (their latency only: random weights detect an arbitrary number of objects, which is printed with each
row). Results go to --out/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from instseg_runtime import OnnxPredictor

import instseg
from instseg.data.image_io import read_image
from instseg.export import to_onnx
from instseg.export.onnx_model import to_instances


def nuclei_image(data: Path, size: int = 640) -> tuple[np.ndarray, str]:
    """A ``size`` x ``size`` crop of the largest dsb2018 val image (edge-padded when smaller)."""
    gt = json.loads((data / "annotations" / "instances_val.json").read_text())
    best = max(gt["images"], key=lambda im: im["width"] * im["height"])
    image = read_image(data / "images" / best["file_name"])[:size, :size]
    pad = ((0, size - image.shape[0]), (0, size - image.shape[1]), (0, 0))
    return np.pad(image, pad, mode="edge"), best["file_name"]


def median_ms(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``run`` in milliseconds after one warm-up call, and its last result."""
    result = run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def build(name: str) -> torch.nn.Module:
    """The shipped model (``default``), a trained checkpoint (a file path) or a registered name (random weights)."""
    if name == "default":
        return instseg.load_model()
    if Path(name).is_file():
        return instseg.load_model(name)
    torch.manual_seed(0)
    return instseg.create_model(name, num_classes=1).eval()


def latency_rows(
    names: list[str], image: np.ndarray, out: Path, repeats: int, thread_counts: tuple[int, ...] = (1, 2)
) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        model = build(name)
        label = Path(name).parent.name if Path(name).is_file() else name  # a checkpoint: its run folder's name
        path = to_onnx(model, out / f"{label}.onnx")  # type: ignore[arg-type]
        for threads in thread_counts:
            torch.set_num_threads(threads)
            row: dict[str, Any] = {"model": name, "type": type(model).__name__, "threads": threads}
            with torch.inference_mode():
                row["pytorch_ms"], found = median_ms(lambda m=model: m.predict(image), repeats)
            row["pytorch_instances"] = len(found)
            for backend in ("onnxruntime", "openvino"):
                try:
                    predictor = OnnxPredictor(path, backend=backend, threads=threads)
                except Exception as err:  # an optional backend that cannot load the file is reported, not fatal
                    row[f"{backend}_error"] = str(err).splitlines()[0][:200]
                    continue
                row[f"{backend}_ms"], result = median_ms(lambda p=predictor: p(image), repeats)
                row[f"{backend}_instances"] = len(result)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def val_ap(data: Path, path: Path) -> dict[str, float]:
    """segm AP of the shipped model on dsb2018 val: PyTorch and the exported file, same images and settings."""
    from instseg.eval.evaluator import evaluate_results

    model = instseg.load_model()
    predictor = OnnxPredictor(path)
    gt_file = data / "annotations" / "instances_val.json"
    gt = json.loads(gt_file.read_text())
    ids = model.category_ids  # type: ignore[union-attr]
    results: dict[str, list[dict[str, Any]]] = {"pytorch": [], "onnx": []}
    torch.set_num_threads(2)
    for im in gt["images"]:
        image = read_image(data / "images" / im["file_name"])
        with torch.inference_mode():
            results["pytorch"] += model.predict(image).to_coco(int(im["id"]), ids)  # type: ignore[operator]
        results["onnx"] += to_instances(predictor(image)).to_coco(int(im["id"]), ids)
    return {key: evaluate_results(gt_file, res, max_dets=1000, source=key)["segm/AP"] for key, res in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--out", type=Path, required=True, help="new folder for the ONNX files and results.json")
    parser.add_argument("--models", nargs="+", default=["default", "yolact_light_mobilenetv3"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to time")
    parser.add_argument("--ap", action="store_true", help="also the val mask AP of the exported default model")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"--out {args.out}: exists and is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    image, source = nuclei_image(args.data)
    report: dict[str, Any] = {"image": f"{source} (640 x 640 crop)", "latency": []}
    report["latency"] = latency_rows(args.models, image, args.out, args.repeats, tuple(args.threads))
    if args.ap:
        default_onnx = args.out / "default.onnx"
        if not default_onnx.exists():
            to_onnx(instseg.load_model(), default_onnx)  # type: ignore[arg-type]
        report["val_segm_AP"] = val_ap(args.data, default_onnx)
        print(json.dumps(report["val_segm_AP"]), flush=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
