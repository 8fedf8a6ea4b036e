"""Rebuild the shipped default model from its recipe: train, choose thresholds on train images, export, evaluate.

    python benchmarks/make_default_model.py --data DSB2018_DIR [--out runs/default] [--skip-train]

The default is SpatialEmbeddings on the small U-Net (``spatial_embedding_unet``, widths 12-192):
1. ``instseg train --config configs/spatial_embedding_dsb2018.py`` on the dsb2018 train split (1200 steps);
2. ``instseg train --config configs/spatial_embedding_dsb2018_stage2.py --init <stage 1>/last.pt`` and
   ``configs/spatial_embedding_dsb2018_stage3.py --init <stage 2>/last.pt``: two warm restarts, lower cosines of
   1200 steps each; then ``configs/spatial_embedding_dsb2018_stage4.py --init <stage 3>/last.pt``: a third warm
   restart that repeats the colour and grey-brightfield images three times per epoch;
3. ``benchmarks/tune_postprocess.py`` on 80 *train* images picks the clustering thresholds (foreground, seed,
   minimum area) for the last stage-4 weights (``last.pt``: the end of the schedule, not a val-picked step);
4. those weights, with the thresholds written into their config, are exported without optimiser state to
   ``instseg/weights/default.pt`` (what ``instseg.load_model()`` loads);
5. ``instseg predict --data <val json>`` then ``instseg eval --json`` report the shipped model's val figures.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> str:
    """Run a command, echoing it and its output; returns the output."""
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    print(done.stdout[-4000:], done.stderr[-2000:], flush=True)
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "default")
    parser.add_argument("--skip-train", action="store_true", help="reuse the last stage's --out/stage4/last.pt")
    args = parser.parse_args()
    instseg = [sys.executable, "-m", "instseg"]
    configs = ROOT / "configs"
    stages = [
        "spatial_embedding_dsb2018.py",
        "spatial_embedding_dsb2018_stage2.py",
        "spatial_embedding_dsb2018_stage3.py",
        "spatial_embedding_dsb2018_stage4.py",
    ]
    runs = [args.out / f"stage{k + 1}" for k in range(len(stages))]
    if not args.skip_train:
        for k, (recipe, out) in enumerate(zip(stages, runs, strict=True)):
            init = ["--init", str(runs[k - 1] / "last.pt")] if k else []
            config = ["--config", str(configs / recipe), "--data", str(args.data), "--out", str(out)]
            run([*instseg, "train", *config, *init])
    final = runs[-1] / "last.pt"
    grid = [
        "--fg",
        "0.3",
        "0.4",
        "0.5",
        "--seed",
        "0.6",
        "0.7",
        "0.8",
        "0.85",
        "0.9",
        "--min-area",
        "12",
        "20",
        "30",
        "45",
    ]
    tune = [sys.executable, str(ROOT / "benchmarks" / "tune_postprocess.py"), str(final), "--data", str(args.data)]
    tuned = run([*tune, *grid])
    found = re.search(r"fg_threshold=([\d.]+) model.kwargs.seed_threshold=([\d.]+) model.kwargs.min_area=(\d+)", tuned)
    if found is None:
        raise SystemExit("tune_postprocess.py printed no best line")
    overrides = {"fg_threshold": float(found[1]), "seed_threshold": float(found[2]), "min_area": int(found[3])}

    from instseg.engine.checkpoint import default_weights_path, export_weights

    target = export_weights(final, default_weights_path(), model_overrides=overrides)
    print(f"wrote {target} ({target.stat().st_size / 2**20:.1f} MiB) with {overrides}")
    val = args.data / "annotations" / "instances_val.json"
    pred = args.out / "val_predictions"
    run([*instseg, "predict", "--data", str(val), "--out", str(pred), "--no-overlays", "--no-label-maps"])
    run([*instseg, "eval", "--gt", str(val), "--pred", str(pred / "results.json"), "--max-dets", "1000", "--json"])


if __name__ == "__main__":
    main()
