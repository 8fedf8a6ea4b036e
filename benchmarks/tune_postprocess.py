"""Choose a bottom-up model's post-processing thresholds on *training* images (never on the val split).

Fits any post-processor with ``fg_threshold``, ``seed_threshold`` and ``min_area`` attributes (the watershed
and the spatial-embedding clustering). The network runs once per image; the grouping then runs for every
combination of foreground threshold, seed threshold and minimum area, and each combination is scored with
instseg's evaluator (F1@0.5 counting every returned object, and COCO mask AP). Prints the table, best first,
and the ``--set`` overrides that apply the best combination.

    python benchmarks/tune_postprocess.py runs/default/stage3/last.pt --data DSB2018_DIR --split train --images 80
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

import instseg
from instseg.data.image_io import read_image
from instseg.eval import evaluate_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--images", type=int, default=80, help="every k-th image so that this many are used")
    parser.add_argument("--fg", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    parser.add_argument("--seed", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--min-area", type=int, nargs="+", default=[8, 12, 20])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    ann = args.data / "annotations" / f"instances_{args.split}.json"
    gt = json.loads(ann.read_text())
    step = max(1, len(gt["images"]) // args.images)
    chosen = sorted(gt["images"], key=lambda im: im["id"])[::step][: args.images]
    ids = {im["id"] for im in chosen}
    subset = {**gt, "images": chosen, "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}

    model = instseg.load_model(args.checkpoint)
    post = model.postprocessor
    cached = []
    with torch.inference_mode():
        for im in chosen:
            pixels = read_image(args.data / "images" / im["file_name"])
            batch = model.preprocess([torch.from_numpy(pixels).permute(2, 0, 1)])
            cached.append((im["id"], batch, model(batch)))

    rows = []
    for fg, seed, area in itertools.product(args.fg, args.seed, args.min_area):
        post.fg_threshold, post.seed_threshold, post.min_area = fg, seed, area
        results = []
        for image_id, batch, outputs in cached:
            results.extend(model.postprocess(outputs, batch)[0].to_coco(image_id, [1]))
        m = evaluate_results(subset, results, max_dets=1000, score_thr=0.0)
        rows.append((m["match/F1@0.5"], m["segm/AP"], fg, seed, area))
    rows.sort(reverse=True)
    print(f"{len(chosen)} {args.split} images of {args.data.name}; F1@0.5 counts every returned object")
    print(f"{'F1@0.5':>8}{'segm/AP':>9}{'fg':>6}{'seed':>6}{'min_area':>9}")
    for f1, ap, fg, seed, area in rows:
        print(f"{f1:>8.4f}{ap:>9.4f}{fg:>6.2f}{seed:>6.2f}{area:>9d}")
    f1, ap, fg, seed, area = rows[0]
    print(f"best: --set model.kwargs.fg_threshold={fg} model.kwargs.seed_threshold={seed} model.kwargs.min_area={area}")


if __name__ == "__main__":
    main()
