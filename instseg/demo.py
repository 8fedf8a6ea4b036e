"""``make demo``: the main jobs of instseg on the sample images shipped in ``examples/`` (no download).

Each step prints the ``instseg`` command it runs, so the demo doubles as a tour of the command line:
segment the sample images with the shipped default model (overlays, label maps, COCO results), score
them against their annotations, then look at, draw and convert the annotations themselves.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dsb2018_sample"


def run(args: list[str]) -> None:
    """Print and run one ``instseg`` command in this process."""
    from instseg.cli.main import app

    print(f"\n$ instseg {shlex.join(args)}", flush=True)
    try:
        app(args, standalone_mode=False)
    except SystemExit as stop:  # typer.Exit(0) ends a command normally
        if stop.code not in (0, None):
            raise


def main() -> None:
    """Run the demo into ``--out`` (default ``demo_out/``)."""
    from instseg.engine.checkpoint import default_weights_path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="COCO data folder to run on")
    args = parser.parse_args()
    out: Path = args.out
    ann = args.sample / "annotations" / "instances_sample.json"
    images = args.sample / "images"
    if not ann.is_file():
        raise SystemExit(f"demo data not found: {ann}")

    if default_weights_path().is_file():
        run(["predict", "--data", str(ann), "--out", str(out / "predictions"), "--overwrite"])  # rerunnable
        run(["eval", "--gt", str(ann), "--pred", str(out / "predictions" / "results.json"), "--max-dets", "1000"])
    else:
        print(f"\n(no default model installed at {default_weights_path()}: skipping prediction)")

    run(["info", str(ann)])
    run(["viz", str(ann), "--images", str(images), "--out", str(out / "annotations_overlay"), "--overwrite"])
    run(["convert", "--from", "coco", "--to", "labels", str(ann), str(out / "as_label_images"), "--overwrite"])
    run(["convert", "--from", "coco", "--to", "yolo", str(ann), str(out / "as_yolo"), "--overwrite"])
    print(f"\ndemo outputs are in {out.resolve()}")


if __name__ == "__main__":
    main()
