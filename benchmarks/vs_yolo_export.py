"""Exported files end to end: instseg's light model (``yolact_light_mobilenetv3``, final masks inside the graph)
against YOLO11n-seg exported by Ultralytics (network only: the user assembles the masks), both in onnxruntime.

One 512 x 512 crop of real dsb2018 nuclei, ``--threads`` intra-op threads, median of ``--repeats`` runs after two
warm-up runs, the contestants timed in turn (one run of each per round), everything in one process (the YOLO
environment's interpreter, which sees this environment's packages: ``benchmarks/vs_yolo.py --stages setup`` builds
it). Rows:

- instseg end to end: ``instseg_runtime.OnnxPredictor(file)(image)``: resize rule, graph (network, Fast NMS, mask
  assembly at the image's resolution, threshold), boolean masks [N, 512, 512] out;
- YOLO end to end, numpy: the exported network, then what a user writes from Ultralytics' output layout:
  confidence filter, ``cv2.dnn.NMSBoxes``, ``sigmoid(coefficients @ prototypes)``, each mask upsampled to the image
  (``cv2.resize``, bilinear), cropped to its box, thresholded at 0.5: boolean masks [N, 512, 512] out;
- YOLO end to end, Ultralytics: ``YOLO(file).predict(image, retina_masks=True)`` (its own torch ops);
- the networks alone in the same runtime (instseg: its raw head outputs, no post-processing).

Counts 0, 10, 100, 300: each model gets the score threshold that gives that count (a bisection over log-thresholds;
1.01 / 1.0 for 0): instseg's file is exported once per count, its top-k and detection caps raised to the count and
its NMS IoU raised (0.7, 0.9, 1.0) only where its own leaves too few boxes; YOLO keeps Ultralytics' defaults (NMS
IoU 0.7, at most 300 detections; the IoU is raised likewise). Random YOLO weights score nearly every box alike, so
where no threshold gives the count, every box is kept (confidence 1e-6) and the detection cap (``max_det``) is set
to the count. Weights: a checkpoint (``--checkpoint``) or fixed-seed
random ones for instseg; YOLO11n-seg built from its yaml (``nc=1``) with random weights (none can be downloaded).

    python benchmarks/vs_yolo.py --data DSB2018_DIR --work runs/vs_yolo_export --stages setup   # once
    python benchmarks/vs_yolo_export.py --data DSB2018_DIR --work runs/vs_yolo_export --threads 2 --repeats 10 \\
        [--checkpoint runs/exp/last.pt]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COUNTS = (0, 10, 100, 300)
IOU_STEPS = (0.5, 0.7, 0.9, 1.0)
YOLO_MAX_DET = 300  # Ultralytics' default cap on detections per image


def interleaved(runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Wall times in ms of each of ``runs``, taken in turn (one of each per round, after ``warmup`` rounds), so
    that a machine shared with other work slows every contestant alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(warmup + repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_ >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
    return times


# -- instseg side (this environment) ----------------------------------------------------------------------------
def export_instseg(args: argparse.Namespace, image: np.ndarray) -> dict[str, Any]:
    """One file per count (thresholds set so that the file returns that many masks) and the network alone."""
    import torch
    from instseg_runtime import OnnxPredictor

    import instseg
    from instseg.export import to_onnx

    torch.manual_seed(0)
    if args.checkpoint:
        model = instseg.load_model(str(args.checkpoint))
    else:
        model = instseg.create_model("yolact_light_mobilenetv3", num_classes=1, min_size=args.size, max_size=args.size)
    model.eval()
    if (model.min_size, model.max_size) != (args.size, args.size):
        raise SystemExit(f"the model's input rule is {model.min_size}/{model.max_size}, not {args.size}")
    post = model.postprocessor
    files: dict[str, Any] = {}
    default_iou = post.nms_iou
    for count in COUNTS:
        post.nms_iou, post.score_threshold = default_iou, 1.01
        if count:  # the model's own NMS IoU first; raised only where it leaves too few boxes for the count
            for iou in (default_iou, *(step for step in IOU_STEPS if step > default_iou)):
                post.nms_iou = iou
                post.score_threshold, found = score_threshold_for(model, image, count)
                if abs(found - count) <= 0.03 * count:
                    break
        path = to_onnx(model, args.work / f"instseg_{count}.onnx", example_size=(args.size, args.size))
        found = len(OnnxPredictor(path, threads=args.threads)(image))
        files[str(count)] = {
            "path": str(path),
            "score_threshold": post.score_threshold,
            "nms_iou": post.nms_iou,
            "instances": found,
        }

    class Network(torch.nn.Module):
        """The light model's network alone: normalisation, backbone, FPN, head and prototypes (raw outputs)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.m = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            m = self.m
            levels = list(m.neck(m.backbone((x - m.pixel_mean) / m.pixel_std)).values())
            levels += m.extra_levels(levels[-1])
            return (*m.head(levels), m.protonet(levels[0]))

    network = args.work / "instseg_network.onnx"
    torch.onnx.export(
        Network(model).eval(),
        (torch.zeros(1, 3, args.size, args.size),),
        str(network),
        input_names=["image"],
        opset_version=18,
        dynamo=False,
    )
    files["network"] = str(network)
    files["weights"] = str(args.checkpoint) if args.checkpoint else "random (seed 0)"
    return files


def bisect(found_at: Callable[[float], int], count: int, steps: int = 14) -> tuple[float, int]:
    """The score threshold (and what it gives) at which ``found_at(threshold)`` is ``count`` within 3%, or the
    closest a bisection over log-thresholds in [1e-5, 0.99] finds."""
    lo, hi, best = math.log(1e-5), math.log(0.99), (math.inf, 0.5, 0)
    for _ in range(steps):
        threshold = math.exp((lo + hi) / 2)
        found = found_at(threshold)
        print(f"count {count}: score threshold {threshold:.6f} gives {found}", flush=True)
        best = min(best, (abs(found - count), threshold, found))
        if abs(found - count) <= 0.03 * count:
            break
        lo, hi = ((lo + hi) / 2, hi) if found > count else (lo, (lo + hi) / 2)
    return best[1], best[2]


def score_threshold_for(model: Any, image: np.ndarray, count: int) -> tuple[float, int]:
    """The score threshold at which ``model`` (its own top-k and candidate caps) returns ``count`` masks on
    ``image``, found with the PyTorch model, which gives the exported file's instances (parity tests)."""
    import torch

    post = model.postprocessor
    post.max_detections = max(post.max_detections, count)  # the caps may not stop short of the count
    post.top_k = max(post.top_k, count)

    def found_at(threshold: float) -> int:
        post.score_threshold = threshold
        with torch.inference_mode():
            return len(model.predict(image))

    return bisect(found_at, count)


# -- measurement (the YOLO environment) -------------------------------------------------------------------------
def yolo_masks(
    outputs: list[np.ndarray], conf: float, keep: int, iou: float, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [N, 4] xyxy, scores [N] and boolean masks [N, size, size] from YOLO-seg's two ONNX outputs
    ([1, 4 + nc + 32, A] and prototypes [1, 32, Hp, Wp]), written as a numpy user does."""
    import cv2

    pred, protos = outputs[0][0].T, outputs[1][0]  # [A, 4 + nc + 32], [32, Hp, Wp]
    nm = protos.shape[0]
    cls = pred[:, 4:-nm]
    scores = cls.max(1)
    ok = scores > conf
    pred, scores = pred[ok], scores[ok]
    if not len(scores):
        return np.zeros((0, 4), np.float32), scores, np.zeros((0, size, size), bool)
    xywh = pred[:, :4].copy()
    xywh[:, :2] -= xywh[:, 2:] / 2  # centre -> top-left, as NMSBoxes takes
    picked = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), conf, iou, top_k=keep), np.int64).reshape(-1)
    picked = picked[:keep]
    boxes = np.concatenate([xywh[picked, :2], xywh[picked, :2] + xywh[picked, 2:]], axis=1).clip(0, size)
    coefficients = pred[picked, -nm:]
    hp, wp = protos.shape[1:]
    soft = 1 / (1 + np.exp(-(coefficients @ protos.reshape(nm, -1))))  # [N, Hp Wp]
    masks = np.zeros((len(picked), size, size), bool)
    for i, (mask, (x0, y0, x1, y1)) in enumerate(zip(soft.reshape(-1, hp, wp), boxes, strict=True)):
        up = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
        r0, r1, c0, c1 = int(y0), int(np.ceil(y1)), int(x0), int(np.ceil(x1))
        masks[i, r0:r1, c0:c1] = up[r0:r1, c0:c1] > 0.5
    return boxes, scores[picked], masks


def build_yolo(work: Path, size: int) -> Path:
    """YOLO11n-seg from Ultralytics' own yaml with one class (random weights), exported to ONNX at ``size``."""
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT as ULTRA

    spec = yaml.safe_load((ULTRA / "cfg" / "models" / "11" / "yolo11-seg.yaml").read_text())
    spec["nc"], spec["scale"] = 1, "n"
    cfg = work / "yolo11n-seg.yaml"  # the scale letter in the name is how Ultralytics picks "n"
    cfg.write_text(yaml.safe_dump(spec))
    written = Path(YOLO(str(cfg), task="segment").export(format="onnx", imgsz=size, dynamic=False, device="cpu"))
    target = work / "yolo11n-seg.onnx"  # a model built from a yaml exports into the current folder: move it
    shutil.move(str(written), target)
    return target


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every timing, in this one process."""
    import cv2
    import onnxruntime as ort
    from instseg_runtime import OnnxPredictor
    from ultralytics import YOLO

    files = json.loads((args.work / "instseg_files.json").read_text())
    image = np.load(args.work / "image.npy")  # [size, size, 3] uint8 RGB
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    yolo_path = build_yolo(args.work, args.size)
    yolo = ort.InferenceSession(str(yolo_path), options, providers=["CPUExecutionProvider"])
    yolo_input = yolo.get_inputs()[0].name
    ultra = YOLO(str(yolo_path), task="segment")
    bgr = np.ascontiguousarray(image[:, :, ::-1])

    def yolo_numpy(conf: float, keep: int, iou: float) -> Any:
        x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        return yolo_masks(yolo.run(None, {yolo_input: x}), conf, keep, iou, args.size)

    rows = []
    for count in COUNTS:
        row: dict[str, Any] = {"count": count}
        predictor = OnnxPredictor(files[str(count)]["path"], threads=args.threads)
        keep, conf, iou = YOLO_MAX_DET, 1.0, 0.7  # Ultralytics' NMS IoU; scores are strictly below 1
        if count:
            for iou in IOU_STEPS[1:]:
                conf, found = bisect(lambda c, i=iou: len(yolo_numpy(c, YOLO_MAX_DET, i)[2]), count)
                if abs(found - count) <= 0.03 * count:
                    break
            if abs(found - count) > 0.03 * count:
                # random weights score nearly every box alike, so no threshold splits them: keep every box
                # (conf 1e-6) and let the detection cap (Ultralytics' max_det) give the count
                keep = count
                for iou in IOU_STEPS[1:]:
                    conf = 1e-6
                    if len(yolo_numpy(conf, keep, iou)[2]) == count:
                        break
        settings = {"imgsz": args.size, "conf": conf, "iou": iou, "max_det": keep, "retina_masks": True}
        settings |= {"device": "cpu", "verbose": False}
        runs: dict[str, Callable[[], Any]] = {
            "instseg": lambda p=predictor: len(p(image)),
            "yolo_numpy": lambda c=conf, k=keep, i=iou: len(yolo_numpy(c, k, i)[2]),
            "yolo_ultralytics": lambda s=settings: len(ultra.predict(bgr, **s)[0].masks or []),
        }
        times = interleaved(runs, args.repeats)
        for name, run in runs.items():
            row[f"{name}_ms"], row[f"{name}_instances"] = statistics.median(times[name]), run()
        row["yolo_nms_iou"], row["yolo_conf"] = iou, conf
        row["instseg_score_threshold"] = files[str(count)]["score_threshold"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    network = ort.InferenceSession(files["network"], options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    alone = interleaved(
        {"instseg": lambda: network.run(None, {"image": x}), "yolo": lambda: yolo.run(None, {yolo_input: x / 255.0})},
        args.repeats,
    )
    instseg_net, yolo_net = statistics.median(alone["instseg"]), statistics.median(alone["yolo"])
    return {
        "rows": rows,
        "network_alone_ms": {"instseg": instseg_net, "yolo11n_seg": yolo_net},
        "threads": args.threads,
        "repeats": args.repeats,
        "size": args.size,
        "weights": files["weights"],
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "yolo_onnx": str(yolo_path),
    }


def report(figures: dict[str, Any]) -> str:
    """The markdown table of ``figures``."""
    lines = [
        "| instances | instseg file (ORT) | YOLO11n-seg + numpy masks | YOLO11n-seg, Ultralytics predict | counts |",
        "|---|---|---|---|---|",
    ]
    for r in figures["rows"]:
        counts = f"{r['instseg_instances']} / {r['yolo_numpy_instances']} / {r['yolo_ultralytics_instances']}"
        lines.append(
            f"| {r['count']} | {r['instseg_ms']:.1f} ms | {r['yolo_numpy_ms']:.1f} ms | "
            f"{r['yolo_ultralytics_ms']:.1f} ms | {counts} |"
        )
    net = figures["network_alone_ms"]
    lines.append(
        f"\nNetworks alone (onnxruntime): instseg {net['instseg']:.1f} ms, YOLO11n-seg {net['yolo11n_seg']:.1f} ms"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "_measure"])
    parser.add_argument("--data", type=Path, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--work", type=Path, default=Path("runs/vs_yolo_export"), help="work and output folder")
    parser.add_argument("--checkpoint", type=Path, default=None, help="instseg checkpoint (default: random weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--venv", type=Path, default=ROOT / "benchmarks" / ".yolo-venv", help="YOLO environment")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.command == "_measure":
        figures = measure(args)
        (args.work / "results.json").write_text(json.dumps(figures, indent=1))
        print(report(figures))
        return
    if args.data is None:
        raise SystemExit("--data is required")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from export_speed import nuclei_image
    from vs_yolo import thread_env, venv_python

    image, source = nuclei_image(args.data, args.size)
    np.save(args.work / "image.npy", image)
    files = export_instseg(args, image)
    files["image"] = f"{source} ({args.size} x {args.size} crop)"
    (args.work / "instseg_files.json").write_text(json.dumps(files, indent=1))
    python = venv_python(args.venv)
    if not python.exists():
        raise SystemExit(f"{python}: no YOLO environment; run benchmarks/vs_yolo.py --stages setup first")
    command = [str(python), __file__, "_measure", "--work", str(args.work), "--threads", str(args.threads)]
    command += ["--repeats", str(args.repeats), "--size", str(args.size)]
    subprocess.run(command, check=True, env=thread_env(args.threads, args.work))


if __name__ == "__main__":
    main()
