"""Training throughput on one CPU core: images/s of an instseg recipe against Ultralytics YOLO11n-seg, same run.

Both train from scratch on the dsb2018 train split at the same image size and batch, with one torch thread and
the data loaded in the training process (no loader workers), so the figure is images per second per core.
instseg's step is split into its phases: loading the batch (decode, masks, augmentation, collate), the forward
pass, the loss (target building included) and the rest (backward and the optimiser step); its data path is then
split again per image (PNG decode, RLE mask decode, augmentation) and per batch (collate). YOLO runs in the
environment of ``benchmarks/vs_yolo.py`` (its ``setup`` and ``convert`` stages; Ultralytics is AGPL-3.0 and never
an instseg dependency) through ``benchmarks/yolo_worker.py throughput``, timed per batch by a callback.

    python benchmarks/vs_yolo.py --data DSB2018_DIR --work runs/throughput --stages setup,convert --threads 1
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/train_throughput.py --data DSB2018_DIR --work runs/throughput \\
        --after-set train.channels_last=true

``--after-set`` runs instseg a second time with those overrides (the candidate speed-up) and prints the ratio and
the largest relative difference of the per-step losses (0 for a change that leaves the arithmetic alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from vs_yolo import thread_env, venv_python  # noqa: E402

PHASES = ("data", "forward", "loss", "backward_and_step")


class TimedStream:
    """The trainer's batch stream, with the seconds spent producing each batch added to ``seconds``."""

    def __init__(self, stream: Any, seconds: list[float]) -> None:
        self.stream = stream
        self.seconds = seconds

    def __iter__(self) -> TimedStream:
        return self

    def __next__(self) -> Any:
        start = time.perf_counter()
        batch = next(self.stream)
        self.seconds.append(time.perf_counter() - start)
        return batch


def timed(fn: Callable[..., Any], seconds: list[float]) -> Callable[..., Any]:
    """``fn`` with the seconds of each call appended to ``seconds``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        return result

    return wrapper


def build_trainer(config: Path, data: Path, imgsz: int, batch: int, out: Path, extra: tuple[str, ...] = ()) -> Any:
    """A ``Trainer`` of ``config`` (plus ``--set`` overrides ``extra``) on ``data``'s train split at ``imgsz`` and
    ``batch``, loading in-process."""
    from instseg.engine.checkpoint import build_model
    from instseg.engine.config_io import load_config
    from instseg.engine.launch import build_datasets, resolve_data, set_train_transforms, with_num_classes
    from instseg.engine.overrides import apply_overrides
    from instseg.engine.rng import seed_everything
    from instseg.engine.trainer import Trainer
    from instseg.methods.segmenter import InstanceSegmenter

    sets = [f"data.train={data}", "data.val_split=null", "data.num_workers=0", f"data.batch_size={batch}"]
    sets += [f"model.kwargs.min_size={imgsz}", f"model.kwargs.max_size={imgsz}", *extra]
    cfg = resolve_data(apply_overrides(load_config(config), sets))
    train_set, _ = build_datasets(cfg)
    cfg = with_num_classes(cfg, train_set.num_classes, str(train_set.ann_file))
    seed_everything(cfg.train.seed)
    model = build_model(cfg, [])
    if not isinstance(model, InstanceSegmenter):
        raise TypeError(f"model {cfg.model.name!r} is not an InstanceSegmenter")
    set_train_transforms(train_set, cfg, model.min_size, model.max_size)
    return Trainer(cfg, model, train_set, out)


def instseg_throughput(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """images/s of the recipe over ``--steps`` steps after ``--warmup``, with the share of each phase."""
    torch.set_num_threads(1)
    out = args.work / ("instseg_throughput_after" if extra else "instseg_throughput")
    trainer = build_trainer(args.config, args.data, args.imgsz, args.batch, out, extra)
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    trainer.stream = TimedStream(trainer.stream, times["data"])
    model = trainer.model
    model.forward = timed(model.forward, times["forward"])  # type: ignore[method-assign]
    model.loss = timed(model.loss, times["loss"])  # type: ignore[method-assign]
    steps: list[float] = []
    losses: list[float] = []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        losses.append(trainer.train_step()["loss"])
        steps.append(time.perf_counter() - start)
    keep = slice(args.warmup, None)
    step_seconds = statistics.fmean(steps[keep])
    phase = {name: statistics.fmean(times[name][keep]) for name in ("data", "forward", "loss")}
    phase["backward_and_step"] = step_seconds - sum(phase.values())
    return {
        "model": trainer.cfg.model.name,
        "config": str(args.config),
        "overrides": list(extra),
        "batch": args.batch,
        "imgsz": args.imgsz,
        "steps_timed": args.steps,
        "step_seconds": step_seconds,
        "images_per_s": args.batch / step_seconds,
        "phase_seconds": phase,
        "losses": losses,
        "data_path": data_path_split(trainer, args.batch * args.steps),
    }


def data_path_split(trainer: Any, images: int) -> dict[str, float]:
    """Mean seconds per image of PNG decode, mask decode and augmentation, and per batch of collate: the steps of
    ``CocoDataset.__getitem__`` taken one by one, because the data set offers no hook to time them inside."""
    stream = trainer.stream.stream
    dataset = stream.dataset
    order = stream.sampler.rank_indices()[:images]
    decode, masks, augment, items = [], [], [], []
    for index in order:
        start = time.perf_counter()
        pixels = dataset.load_image(index)
        image = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
        decoded = time.perf_counter()
        target = dataset.load_target(index)
        loaded = time.perf_counter()
        for transform in dataset.transforms:
            image, target = transform(image, target)
        done = time.perf_counter()
        decode.append(decoded - start)
        masks.append(loaded - decoded)
        augment.append(done - loaded)
        items.append((image, target, {"image_id": 0, "file_name": "", "original_size": tuple(pixels.shape[:2])}))
    collate = []
    for first in range(0, len(items) - stream.batch_size + 1, stream.batch_size):
        start = time.perf_counter()
        stream.collate_fn(items[first : first + stream.batch_size])
        collate.append(time.perf_counter() - start)
    return {
        "png_decode_per_image": statistics.fmean(decode),
        "mask_decode_per_image": statistics.fmean(masks),
        "augment_per_image": statistics.fmean(augment),
        "collate_per_batch": statistics.fmean(collate),
    }


def show(figures: dict[str, Any]) -> None:
    """Print one instseg arm: images/s, the phases of a step, the data path and the losses."""
    name = figures["model"] + (" with " + " ".join(figures["overrides"]) if figures["overrides"] else "")
    print(f"instseg {name}: {figures['images_per_s']:.2f} images/s ({figures['step_seconds']:.2f} s per step)")
    for phase, seconds in figures["phase_seconds"].items():
        print(f"  {phase:22s} {seconds * 1000:8.1f} ms per step ({seconds / figures['step_seconds']:.0%})")
    for part, seconds in figures["data_path"].items():
        print(f"  {part:22s} {seconds * 1000:8.1f} ms")
    print("losses", " ".join(f"{v:.6f}" for v in figures["losses"]), flush=True)


def yolo_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """images/s of YOLO11n-seg from the worker (Ultralytics' own training loop, timed per batch)."""
    convert = json.loads((args.work / "convert.json").read_text())
    setup = json.loads((args.work / "setup.json").read_text())
    result = args.work / "yolo_throughput.json"
    command = [str(venv_python(Path(setup["venv"]))), str(ROOT / "benchmarks" / "yolo_worker.py"), "throughput"]
    command += ["--data", convert["yaml"], "--out", str(args.work / "yolo_throughput"), "--imgsz", str(args.imgsz)]
    command += ["--batch", str(args.batch), "--batches", str(args.warmup + args.steps), "--warmup", str(args.warmup)]
    command += ["--threads", "1", "--result", str(result)]
    subprocess.run(command, check=True, env=thread_env(1, args.work))
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (images/, annotations/)")
    parser.add_argument("--work", type=Path, default=Path("runs/throughput"), help="vs_yolo.py work folder")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "yolact_light_dsb2018.py")
    parser.add_argument("--imgsz", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (batches) of each")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps of each")
    parser.add_argument("--skip-yolo", action="store_true")
    parser.add_argument(
        "--after-set", action="append", default=[], help="KEY=VALUE of a second instseg arm, same run (repeatable)"
    )
    args = parser.parse_args()
    args.data, args.work = args.data.resolve(), args.work.resolve()
    torch.set_flush_denormal(True)
    ours = instseg_throughput(args)
    figures: dict[str, Any] = {"instseg": ours}
    out = args.work / "train_throughput.json"
    out.write_text(json.dumps(figures, indent=2))
    show(ours)
    if args.after_set:
        after = figures["instseg_after"] = instseg_throughput(args, tuple(args.after_set))
        out.write_text(json.dumps(figures, indent=2))
        show(after)
        worst = max(abs(a - b) / abs(a) for a, b in zip(ours["losses"], after["losses"], strict=True))
        print(f"after / before: {after['images_per_s'] / ours['images_per_s']:.2f}x images/s; largest relative")
        print(f"loss difference over the {len(ours['losses'])} steps: {worst:.2e} (0 = identical)", flush=True)
    if args.skip_yolo:
        return
    yolo = figures["yolo"] = yolo_throughput(args)
    out.write_text(json.dumps(figures, indent=2))
    print(f"YOLO11n-seg: {yolo['images_per_s']:.2f} images/s ({yolo['step_seconds']:.2f} s per step)")
    for arm in ("instseg", "instseg_after"):
        if arm in figures:
            print(f"{arm} / YOLO: {figures[arm]['images_per_s'] / yolo['images_per_s']:.2f}x")


if __name__ == "__main__":
    main()
