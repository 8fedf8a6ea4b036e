"""Peer comparison on dsb2018 nuclei: an instseg model against Ultralytics YOLO11n-seg, both trained from scratch.

Same data, same image size (``--imgsz``), same wall-clock training budget (``--minutes`` each, one after the
other), one evaluator (``instseg eval``: segm/AP, AP50, F1@0.5 at max-dets 1000) and latency of one
``--latency-size`` square image on the CPU under PyTorch and onnxruntime, with a fixed thread count.

Ultralytics is AGPL-3.0 and never a dependency of instseg: the ``setup`` stage creates a separate environment
(``benchmarks/.yolo-venv``) that sees this environment's packages through a ``.pth`` file (torch is not installed
twice) and gets ``ultralytics`` (+ ``onnxslim`` for its default ONNX export) from the package registry; all YOLO
work runs in ``benchmarks/yolo_worker.py`` under that interpreter.

Stages (``--stages``, in this order; each writes ``WORK/<name>.json`` and is skipped when that file exists,
unless ``--force``):

    setup    the YOLO environment (setup.json)
    convert  dsb2018 COCO -> YOLO folders with ``instseg convert --to yolo`` + the dataset yaml (convert.json)
    train    YOLO11n-seg (Ultralytics ``time=``), then the instseg config (steps from a timed short run, since
             instseg's trainer has no time limit) (train_yolo.json, train_instseg.json)
    eval     predict val with each model, COCO results json, ``instseg eval`` (eval_yolo.json, eval_instseg.json)
    latency  median of ``--runs`` runs per model and runtime (latency_yolo.json, latency_instseg.json)
    report   markdown table + accuracy-vs-latency plot (report.json, vs_yolo.png)

    python benchmarks/vs_yolo.py --data DSB2018_DIR --minutes 20 --threads 1 --work runs/vs_yolo_yolact
    python benchmarks/vs_yolo.py --data DSB2018_DIR --minutes 0.5 --imgsz 128 --limit-images 8 --runs 3 \\
        --work runs/vs_yolo_smoke
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "benchmarks" / "yolo_worker.py"
STAGES = ("setup", "convert", "train", "eval", "latency", "report")
SIZE_KEYS = "model.kwargs.min_size,model.kwargs.max_size"


# -- plumbing -------------------------------------------------------------------------------------
def thread_env(threads: int, work: Path | None = None) -> dict[str, str]:
    """Environment of every child process: fixed thread count, Ultralytics settings kept in the work dir."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), YOLO_OFFLINE="1")
    if work is not None:
        env["YOLO_CONFIG_DIR"] = str((work / "ultralytics_settings").resolve())
    return env


def run(command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> float:
    """Run a command (echoed), output to ``log`` (or through); return its wall-clock seconds; raise on failure."""
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    if log is None:
        subprocess.run(command, check=True, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as handle:
            done = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
        if done.returncode:
            tail = log.read_text()[-3000:]
            raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n... {log}:\n{tail}")
    return time.perf_counter() - start


def stage(work: Path, name: str, force: bool, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Figures of stage ``name``: read from ``WORK/name.json`` if there (and not ``force``), else computed and saved."""
    path = work / f"{name}.json"
    if path.is_file() and not force:
        print(f"[{name}] done before, reusing {path}")
        return json.loads(path.read_text())
    print(f"[{name}] running", flush=True)
    start = time.perf_counter()
    figures = fn()
    figures["stage_seconds"] = time.perf_counter() - start
    path.write_text(json.dumps(figures, indent=1))
    print(f"[{name}] {figures['stage_seconds']:.0f} s -> {path}", flush=True)
    return figures


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def worker(args: argparse.Namespace, command: str, result: Path, *options: str, log: Path | None = None) -> dict:
    """Run ``yolo_worker.py COMMAND`` in the YOLO environment; its figures (json) and wall-clock seconds."""
    seconds = run(
        [
            str(venv_python(args.venv)),
            str(WORKER),
            command,
            *options,
            "--threads",
            str(args.threads),
            "--result",
            str(result),
        ],
        env=thread_env(args.threads, args.work),
        log=log,
    )
    return {**json.loads(result.read_text()), "wall_seconds": seconds}


# -- stages ---------------------------------------------------------------------------------------
def setup(args: argparse.Namespace) -> dict[str, Any]:
    """Create the YOLO environment on top of this one's packages and install Ultralytics into it."""
    import site
    import sysconfig

    python = venv_python(args.venv)
    if not python.exists():
        run([sys.executable, "-m", "venv", str(args.venv)])
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()] or [sysconfig.get_paths()["purelib"]]
    # addsitedir (not a bare path line) so that this environment's own .pth files (editable instseg) apply too
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in ours)
    (Path(purelib) / "_instseg_main_env.pth").write_text(lines)
    show = subprocess.run([str(python), "-m", "pip", "show", "torch"], capture_output=True, text=True).stdout
    location = next((line.split(":", 1)[1].strip() for line in show.splitlines() if line.startswith("Location:")), "")
    if not location or Path(location).resolve() not in {Path(p).resolve() for p in ours}:
        raise SystemExit(f"pip in {args.venv} does not see this environment's torch (Location: {location!r})")
    print(f"pip in {args.venv} sees torch at {location}: it is not installed twice")
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "ultralytics", "onnxslim"])
    check = "import ultralytics, torch, instseg; print(ultralytics.__version__, torch.__version__, torch.__file__)"
    out = subprocess.run(
        [str(python), "-c", check], check=True, capture_output=True, text=True, env=thread_env(1, args.work)
    )
    version, torch_version, torch_file = out.stdout.splitlines()[-1].split()  # first import may print settings
    return {"venv": str(args.venv), "ultralytics": version, "torch": torch_version, "torch_file": torch_file}


def _subset(src: Path, split: str, limit: int | None, dst: Path) -> Path:
    """``instances_{split}.json`` of the data set, or of its first ``limit`` images (written under ``dst``)."""
    ann = src / "annotations" / f"instances_{split}.json"
    if limit is None:
        return ann
    data = json.loads(ann.read_text())
    images = sorted(data["images"], key=lambda im: im["id"])[:limit]
    ids = {im["id"] for im in images}
    data = {**data, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}
    out = dst / "annotations" / f"instances_{split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data))
    return out


def convert(args: argparse.Namespace) -> dict[str, Any]:
    """COCO (optionally the first ``--limit-images`` of each split) -> YOLO folders, and the Ultralytics yaml."""
    coco = args.work / "data" / "coco"
    yolo = args.work / "data" / "yolo"
    figures: dict[str, Any] = {"images_dir": str((args.data / "images").resolve())}
    for split in ("train", "val"):
        ann = _subset(args.data, split, args.limit_images, coco)
        figures[f"{split}_json"] = str(ann.resolve())
        if (yolo / split).exists():
            shutil.rmtree(yolo / split)
        cmd = _instseg("convert", "--from", "coco", "--to", "yolo", str(ann), str(yolo / split))
        run([*cmd, "--images", str(args.data / "images"), "--link"])
        labels = list((yolo / split / "labels").glob("*.txt"))
        figures[f"{split}_images"] = len(labels)
        figures[f"{split}_objects"] = sum(len(p.read_text().splitlines()) for p in labels)
    names = json.loads(Path(figures["train_json"]).read_text())["categories"]
    dataset = {
        "path": str(yolo.resolve()),
        "train": "train/images",  # Ultralytics finds labels by replacing /images/ with /labels/
        "val": "val/images",
        "names": [c["name"] for c in names],  # YOLO class k = k-th category, as instseg converts
    }
    yaml_path = yolo / "dsb2018.yaml"
    yaml_path.write_text(json.dumps(dataset, indent=1))  # JSON is valid YAML
    figures["yaml"] = str(yaml_path.resolve())
    return figures


def train_yolo(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    out = args.work / "yolo" / "train"
    options = ["--data", data["yaml"], "--out", str(out), "--imgsz", str(args.imgsz), "--minutes", str(args.minutes)]
    options += ["--batch", str(args.yolo_batch), "--workers", str(args.workers)]
    return worker(
        args, "train", args.work / "yolo" / "train_result.json", *options, log=args.work / "yolo" / "train.log"
    )


def _instseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "instseg", *args]


def _size_overrides(args: argparse.Namespace) -> list[str]:
    keys = [k for k in args.instseg_size_keys.split(",") if k]
    return [f"{k}={args.imgsz}" for k in keys] + list(args.instseg_set)


def _mean_step_seconds(metrics_csv: Path, skip: int) -> float:
    """Mean seconds per step from a run logged every step, leaving out the first ``skip`` (warm-up) steps."""
    with metrics_csv.open() as handle:
        rates = [float(row["it_per_s"]) for row in csv.DictReader(handle) if row.get("it_per_s")]
    rates = rates[skip:] or rates
    return statistics.fmean(1.0 / r for r in rates)


def train_instseg(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    """instseg's trainer has no time limit: time ``--timing-steps`` steps, then train for the steps that fit."""
    from instseg.engine.config_io import load_config
    from instseg.engine.overrides import apply_overrides

    base = ["train", "--config", str(args.instseg_config), "--data", data["train_json"]]
    base += ["--images", data["images_dir"]]  # a json (not the folder) as --data: no validation inside the budget
    sets = [*_size_overrides(args), "train.eval_period=0", "train.checkpoint_period=0"]
    env = thread_env(args.threads)
    timing = args.work / "instseg" / "timing"
    shutil.rmtree(timing, ignore_errors=True)
    probe = [f"train.max_iters={args.timing_steps}", "train.log_period=1"]
    run(
        _instseg(*base, "--out", str(timing), *[a for s in sets + probe for a in ("--set", s)]),
        env,
        timing.with_suffix(".log"),
    )
    step_seconds = _mean_step_seconds(timing / "metrics.csv", skip=min(2, args.timing_steps - 1))
    max_iters = max(1, int(args.minutes * 60 / step_seconds))
    cfg = apply_overrides(load_config(args.instseg_config), sets)
    warmup = min(cfg.train.warmup_iters, max_iters // 5)
    print(
        f"instseg's trainer has no time limit: {step_seconds:.2f} s/step measured over {args.timing_steps} steps "
        f"-> train.max_iters={max_iters} for {args.minutes} min (warmup {warmup})"
    )
    out = args.work / "instseg" / "train"
    shutil.rmtree(out, ignore_errors=True)
    sets += [
        f"train.max_iters={max_iters}",
        f"train.warmup_iters={warmup}",
        f"train.log_period={max(1, max_iters // 50)}",
    ]
    seconds = run(
        _instseg(*base, "--out", str(out), *[a for s in sets for a in ("--set", s)]), env, out.with_suffix(".log")
    )
    import instseg

    model = instseg.load_model(out / "last.pt")
    return {
        "weights": str(out / "last.pt"),
        "config": str(args.instseg_config),
        "model": cfg.model.name,
        "overrides": sets,
        "params": int(sum(p.numel() for p in model.parameters())),
        "step_seconds_measured": step_seconds,
        "steps": max_iters,
        "batch": cfg.data.batch_size,
        "train_seconds": seconds,
    }


def evaluate(gt: str, pred: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """The one evaluator for both models: ``instseg eval --max-dets 1000 --json``."""
    run(
        _instseg("eval", "--gt", gt, "--pred", str(pred), "--max-dets", "1000", "--json", "--out", str(out)),
        env,
        out.with_suffix(".log"),
    )
    metrics = json.loads(out.read_text())
    return {"segm/AP": metrics["segm/AP"], "segm/AP50": metrics["segm/AP50"], "match/F1@0.5": metrics["match/F1@0.5"]}


def eval_yolo(args: argparse.Namespace, data: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    pred = args.work / "yolo" / "val_results.json"
    options = ["--weights", trained["weights"], "--gt", data["val_json"], "--images", data["images_dir"]]
    options += ["--pred", str(pred), "--imgsz", str(args.imgsz)]
    predicted = worker(args, "predict", args.work / "yolo" / "predict_result.json", *options)
    return {
        **predicted,
        **evaluate(data["val_json"], pred, args.work / "yolo" / "val_metrics.json", thread_env(args.threads)),
    }


def eval_instseg(args: argparse.Namespace, data: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    out = args.work / "instseg" / "val_pred"
    env = thread_env(args.threads)
    cmd = _instseg("predict", trained["weights"], "--data", data["val_json"], "--images", data["images_dir"])
    seconds = run([*cmd, "--out", str(out), "--no-overlays", "--no-label-maps"], env, out.with_suffix(".log"))
    pred = out / "results.json"
    figures = evaluate(data["val_json"], pred, args.work / "instseg" / "val_metrics.json", env)
    return {"pred": str(pred), "detections": len(json.loads(pred.read_text())), "seconds": seconds, **figures}


def latency_image(path: Path, size: int) -> Path:
    """The timing image: real nuclei (the shipped samples) tiled to ``size`` x ``size``, as latency.py uses."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from latency import nuclei_image
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(nuclei_image(size)).save(path)
    return path


def latency_yolo(args: argparse.Namespace, trained: dict[str, Any]) -> dict[str, Any]:
    image = latency_image(args.work / "latency_image.png", args.latency_size)
    options = ["--weights", trained["weights"], "--image", str(image), "--size", str(args.latency_size)]
    options += ["--runs", str(args.runs)]
    figures = worker(
        args, "latency", args.work / "yolo" / "latency_result.json", *options, log=args.work / "yolo" / "latency.log"
    )
    figures["timed"] = "model.predict: Ultralytics pre-processing + network + NMS and mask post-processing"
    return figures


def latency_instseg(args: argparse.Namespace, trained: dict[str, Any]) -> dict[str, Any]:
    """In-process (this environment), one image; ONNX: the raw forward exported, instseg pre/post in torch."""
    code = [sys.executable, str(ROOT / "benchmarks" / "vs_yolo.py"), "_instseg-latency", trained["weights"]]
    code += [str(latency_image(args.work / "latency_image.png", args.latency_size)), str(args.latency_size)]
    code += [str(args.runs), str(args.threads), str(args.work / "instseg")]
    result = args.work / "instseg" / "latency_result.json"
    run([*code, str(result)], thread_env(args.threads), args.work / "instseg" / "latency.log")
    return json.loads(result.read_text())


def instseg_latency_child(
    weights: str, image_path: str, size: int, runs: int, threads: int, out_dir: str, result: str
) -> None:
    """Child process: torch and onnxruntime medians of instseg on one image (separate process: clean thread state)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image

    import instseg
    from instseg.structures import ImageBatch

    torch.set_num_threads(threads)
    model = instseg.load_model(weights).fuse_for_inference()  # deployment form, as YOLO's predict fuses too
    model.min_size, model.max_size = size, size  # run the network at size x size, as YOLO's imgsz
    image = np.asarray(Image.open(image_path).convert("RGB"))

    def timed(fn: Callable[[], int]) -> tuple[float, list[float], int]:
        for _ in range(3):
            fn()
        times, count = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            count = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), times, count

    torch_median, torch_times, torch_count = timed(lambda: len(model.predict(image)))

    tensor = torch.from_numpy(image).permute(2, 0, 1)
    with torch.no_grad():
        batch = model.preprocess([tensor])
        reference = model(batch)
    keys = sorted(reference)
    layout = [(k, len(reference[k]) if isinstance(reference[k], (list, tuple)) else None) for k in keys]

    class RawForward(torch.nn.Module):
        """The model's forward on a pre-processed tensor; outputs flattened to a tuple of tensors."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.model(ImageBatch(x, batch.image_sizes, batch.original_sizes))
            flat: list[torch.Tensor] = []
            for k in keys:
                flat.extend(out[k] if isinstance(out[k], (list, tuple)) else [out[k]])
            return tuple(flat)

    onnx_path = Path(out_dir) / "model.onnx"
    torch.onnx.export(
        RawForward().eval(), (batch.tensor,), str(onnx_path), input_names=["images"], opset_version=17, dynamo=False
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        ort_error = None
    except Exception as err:  # an op the exported graph cannot run (e.g. a float64 conv): report, keep torch figures
        ort_error = f"{type(err).__name__}: {err}"[:500]
        print(f"onnxruntime cannot load the exported model: {ort_error}")

    def unflatten(flat: list[np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        i = 0
        for key, n in layout:
            if n is None:
                out[key], i = torch.from_numpy(flat[i]), i + 1
            else:
                out[key], i = [torch.from_numpy(a) for a in flat[i : i + n]], i + n
        return out

    @torch.no_grad()
    def run_ort() -> int:
        b = model.preprocess([torch.from_numpy(image).permute(2, 0, 1)])
        raw = session.run(None, {"images": b.tensor.contiguous().numpy()})
        return len(model.postprocess(unflatten(raw), b)[0])

    ort_median, ort_times, ort_count = timed(run_ort) if ort_error is None else (None, [], None)
    figures = {
        "params": int(sum(p.numel() for p in model.parameters())),
        "torch_ms": 1000 * torch_median,
        "torch_ms_all": [1000 * t for t in torch_times],
        "ort_ms": None if ort_median is None else 1000 * ort_median,
        "ort_ms_all": [1000 * t for t in ort_times],
        "ort_error": ort_error,
        "instances_torch": torch_count,
        "instances_ort": ort_count,
        "onnx": str(onnx_path),
        "torch_threads": torch.get_num_threads(),
        "timed": "torch: model.predict (pre-processing + network + post-processing); ORT: instseg pre-processing "
        "(torch) + network (onnxruntime) + instseg post-processing (torch)",
    }
    Path(result).write_text(json.dumps(figures, indent=1))


# -- report ---------------------------------------------------------------------------------------
def report(args: argparse.Namespace, figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Print the markdown table and the ratios; plot segm/AP against latency."""
    rows = []
    for name, key in (
        (f"instseg `{figures['train_instseg']['model']}`", "instseg"),
        ("Ultralytics YOLO11n-seg", "yolo"),
    ):
        trained, scored, timed = figures[f"train_{key}"], figures[f"eval_{key}"], figures[f"latency_{key}"]
        if key == "instseg":
            done = f"{trained['steps']} steps × {trained['batch']}"
        else:
            done = f"{trained['epochs']} epochs, {trained['steps']} steps × {trained['batch']}"
        rows.append(
            {
                "model": name,
                "params": trained["params"],
                "train_min": trained["train_seconds"] / 60,
                "done": done,
                "ap": scored["segm/AP"],
                "ap50": scored["segm/AP50"],
                "f1": scored["match/F1@0.5"],
                "torch_ms": timed["torch_ms"],
                "ort_ms": timed["ort_ms"],
            }
        )
    print(
        f"\ndsb2018 val ({figures['convert']['val_images']} images, {figures['convert']['val_objects']} nuclei), "
        f"trained from scratch on {figures['convert']['train_images']} images at imgsz {args.imgsz}, "
        f"{args.minutes} min budget each; latency: one {args.latency_size}x{args.latency_size} image, CPU, "
        f"{args.threads} thread(s), median of {args.runs} runs\n"
    )
    print(
        "| model | params | train min | steps/epochs done | segm/AP | AP50 | F1@0.5 "
        "| latency torch ms | latency ORT ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['train_min']:.1f} | {r['done']} | {r['ap']:.3f} | "
            f"{r['ap50']:.3f} | {r['f1']:.3f} | {r['torch_ms']:.1f} | {_ms(r['ort_ms'])} |"
        )
    ratios = {
        rt: rows[0][f"{rt}_ms"] / rows[1][f"{rt}_ms"] if rows[0][f"{rt}_ms"] and rows[1][f"{rt}_ms"] else None
        for rt in ("torch", "ort")
    }
    print(f"\nlatency ratio instseg / YOLO: PyTorch {_ratio(ratios['torch'])}, onnxruntime {_ratio(ratios['ort'])}")
    for key in ("instseg", "yolo"):
        if figures[f"latency_{key}"].get("ort_error"):
            print(f"no onnxruntime figure for {key}: {figures[f'latency_{key}']['ort_error']}")
    for key in ("instseg", "yolo"):
        print(f"timed ({key}): {figures[f'latency_{key}']['timed']}")
    print(
        "training budget: instseg's trainer has no time limit, so its steps were computed from a timed short run "
        f"({figures['train_instseg']['step_seconds_measured']:.2f} s/step); YOLO used Ultralytics' time= "
        "(its final validation falls inside the budget); train min = wall clock of each training process"
    )
    plot = plot_results(rows, args.work / "vs_yolo.png")
    return {"rows": rows, "ratio_instseg_over_yolo": ratios, "plot": plot}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def plot_results(rows: list[dict[str, Any]], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, color in zip(rows, ("tab:blue", "tab:orange"), strict=True):
        name = r["model"].replace("`", "")
        ax.scatter([r["torch_ms"]], [r["ap"]], color=color, marker="o", label=f"{name} (PyTorch)")
        if r["ort_ms"] is None:
            continue
        ax.plot([r["torch_ms"], r["ort_ms"]], [r["ap"], r["ap"]], color=color, lw=1)
        ax.scatter([r["ort_ms"]], [r["ap"]], color=color, marker="s", facecolors="none", label=f"{name} (ORT)")
    ax.set_xlabel("CPU latency per image (ms)")
    ax.set_ylabel("dsb2018 val segm/AP")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")
    return str(path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 in COCO layout (images/, annotations/)")
    parser.add_argument("--work", type=Path, default=Path("runs/vs_yolo"), help="work and output folder")
    parser.add_argument("--imgsz", type=int, default=512, help="training/evaluation image size of both models")
    parser.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget of each model")
    parser.add_argument("--instseg-config", type=Path, default=ROOT / "configs" / "yolact_light_dsb2018.py")
    parser.add_argument(
        "--instseg-size-keys",
        default=SIZE_KEYS,
        help="config fields set to --imgsz for instseg (comma-separated; empty: keep the config's sizes)",
    )
    parser.add_argument("--instseg-set", action="append", default=[], help="extra instseg --set KEY=VALUE (repeatable)")
    parser.add_argument("--timing-steps", type=int, default=10, help="instseg steps timed to plan its budget")
    parser.add_argument("--yolo-batch", type=int, default=16, help="Ultralytics batch size (its default)")
    parser.add_argument("--workers", type=int, default=0, help="Ultralytics data loader workers")
    parser.add_argument("--threads", type=int, default=2, help="torch/onnxruntime threads everywhere")
    parser.add_argument("--runs", type=int, default=20, help="timed latency runs (median)")
    parser.add_argument("--latency-size", type=int, default=640, help="side of the latency image and network input")
    parser.add_argument("--limit-images", type=int, default=None, help="first N images of each split (smoke checks)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--force", action="store_true", help="redo the chosen stages even if their json exists")
    parser.add_argument("--venv", type=Path, default=ROOT / "benchmarks" / ".yolo-venv", help="YOLO environment")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {','.join(STAGES)}")
    args.work.mkdir(parents=True, exist_ok=True)
    args.data = args.data.resolve()
    print(f"threads: {args.threads} (torch intra-op, onnxruntime intra-op, OMP_NUM_THREADS of every child process)")

    figures: dict[str, dict[str, Any]] = {}

    def step(name: str, group: str, fn: Callable[[], dict[str, Any]]) -> None:
        if group in chosen:
            figures[name] = stage(args.work, name, args.force, fn)
        elif (args.work / f"{name}.json").is_file():
            figures[name] = json.loads((args.work / f"{name}.json").read_text())

    step("setup", "setup", lambda: setup(args))
    step("convert", "convert", lambda: convert(args))
    step("train_yolo", "train", lambda: train_yolo(args, figures["convert"]))
    step("train_instseg", "train", lambda: train_instseg(args, figures["convert"]))
    step("eval_yolo", "eval", lambda: eval_yolo(args, figures["convert"], figures["train_yolo"]))
    step("eval_instseg", "eval", lambda: eval_instseg(args, figures["convert"], figures["train_instseg"]))
    step("latency_yolo", "latency", lambda: latency_yolo(args, figures["train_yolo"]))
    step("latency_instseg", "latency", lambda: latency_instseg(args, figures["train_instseg"]))
    if "report" in chosen:
        figures["report"] = stage(args.work, "report", True, lambda: report(args, figures))
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_instseg-latency":  # internal: the instseg latency child process
        w, img, size, runs, threads, out_dir, result = sys.argv[2:9]
        instseg_latency_child(w, img, int(size), int(runs), int(threads), out_dir, result)
    else:
        main()
