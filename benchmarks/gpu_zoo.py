"""One prepared GPU run: the default recipe and the ResNet-50 variants (Mask R-CNN, YOLACT, SOLOv2) trained with AMP
on dsb2018, each evaluated on val, one table printed; with two or more GPUs the training also runs over NCCL.

    python benchmarks/gpu_zoo.py --data DSB2018_DIR [--out runs/gpu_zoo] [--iters N] [--only NAME ...]

Each recipe trains through ``torchrun -m instseg train`` with ``--device cuda --set train.amp=bf16`` (the autocast
and GradScaler paths of ``instseg.engine.trainer``), ``--iters`` replacing the recipe's ``max_iters`` (warmup and
eval period follow), then ``instseg eval best.pt --max-dets 1000`` gives segm/AP, AP50, AP75, F1@0.5 and PQ@0.5.
``--ranks`` (default: 2 when two GPUs are visible, else 1) processes per run; with two or more ranks on CUDA the
process group is NCCL and the model is wrapped in DDP. NCCL refuses two ranks on one GPU, so one GPU cannot run
that path: the table then says ``ranks 1``.

The same script checks itself on a CPU (``--device cpu --ranks 2 --iters 2``: gloo instead of NCCL, no AMP).
The table goes to stdout and ``OUT/table.md``; each run folder keeps its ``metrics.csv`` and ``eval.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (recipe under configs/, model that replaces the recipe's; None keeps it)
RECIPES: dict[str, tuple[str, str | None]] = {
    "default": ("spatial_embedding_dsb2018.py", None),  # stage 1 of the default (stage 2 restarts from it)
    "mask_rcnn_r50": ("mask_rcnn_r18_dsb2018.py", "mask_rcnn_resnet50_fpn"),
    "yolact_r50": ("yolact_r18_dsb2018.py", "yolact_resnet50"),
    "solov2_r50": ("solov2_r18_dsb2018.py", "solov2_resnet50"),
}
COLUMNS = ("segm/AP", "segm/AP50", "segm/AP75", "match/F1@0.5", "match/PQ@0.5")


def visible_gpus() -> int:
    """CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def train_command(recipe: str, model: str | None, args: argparse.Namespace, run: Path) -> list[str]:
    """``torchrun ... -m instseg train`` for one recipe, its step budget set to ``--iters`` when given."""
    from instseg.engine.config_io import load_config

    cfg = load_config(ROOT / "configs" / recipe)
    iters = args.iters or cfg.train.max_iters
    sets = {
        "train.max_iters": iters,
        "train.warmup_iters": min(cfg.train.warmup_iters, iters // 5),
        "train.eval_period": iters,
        "train.checkpoint_period": iters,
    }
    if args.device.startswith("cuda"):
        sets["train.amp"] = args.amp
    if model is not None:
        sets["model.name"] = model
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.ranks}"]
    command += ["-m", "instseg", "train", "--config", str(ROOT / "configs" / recipe), "--data", str(args.data)]
    command += ["--out", str(run), "--device", args.device]
    for key, value in sets.items():
        command += ["--set", f"{key}={value}"]
    return command


def run_logged(command: list[str], log: Path) -> float:
    """Run ``command`` with its output in ``log``; seconds it took. A failure prints the log's tail and raises."""
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(log.read_text()[-4000:], flush=True)
        raise SystemExit(f"{command[0]} exited with {done.returncode} after {seconds:.0f} s (log: {log})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="dsb2018 folder (annotations/, images/)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_zoo")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--amp", default="bf16", choices=("bf16", "fp16"))
    parser.add_argument("--iters", type=int, default=None, help="steps per recipe (default: the recipe's)")
    parser.add_argument("--ranks", type=int, default=None, help="processes per run (default: 2 with 2+ GPUs)")
    parser.add_argument("--only", nargs="+", choices=sorted(RECIPES), default=list(RECIPES))
    args = parser.parse_args()
    args.data, args.out = args.data.resolve(), args.out.resolve()  # the runs start in the repository's root
    gpus = visible_gpus()
    if args.device.startswith("cuda") and gpus == 0:
        raise SystemExit("--device cuda: no CUDA device is visible (use --device cpu to check the script)")
    if args.ranks is None:
        args.ranks = 2 if gpus >= 2 else 1
    args.out.mkdir(parents=True, exist_ok=True)
    amp = args.amp if args.device.startswith("cuda") else "off"
    header = f"device {args.device} x{gpus or 1}, ranks {args.ranks}, amp {amp}"
    rows = [f"| recipe | model | steps | train s | {' | '.join(COLUMNS)} |", "|" + " --- |" * (4 + len(COLUMNS))]
    for name in args.only:
        recipe, model = RECIPES[name]
        run = args.out / name
        command = train_command(recipe, model, args, run)
        train_s = run_logged(command, args.out / f"{name}_train.log")
        metrics_file = run / "eval.json"
        evaluate = [sys.executable, "-m", "instseg", "eval", str(run / "best.pt"), "--data", str(args.data)]
        evaluate += ["--max-dets", "1000", "--json", "--out", str(metrics_file), "--device", args.device]
        run_logged(evaluate, args.out / f"{name}_eval.log")
        metrics = json.loads(metrics_file.read_text())
        steps = next(c.split("=")[1] for c in command if c.startswith("train.max_iters="))
        figures = " | ".join(f"{metrics.get(k, float('nan')):.3f}" for k in COLUMNS)
        rows.append(f"| {recipe} | {model or 'recipe'} | {steps} | {train_s:.0f} | {figures} |")
        print(rows[-1], flush=True)
    table = "\n".join([header, "", *rows])
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
